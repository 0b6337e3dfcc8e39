#pragma once
// ServiceOptions: how `keel serve` was configured (DESIGN.md §9), parsed by
// the CLI and read by every component. Immutable once the service starts;
// safe to read from any thread.

#include <string>

namespace keel::service {

struct ServiceOptions {
  std::string listen = "127.0.0.1:7777";  // HOST:PORT; port 0 picks a free one
  std::string db;                         // the database path (as --db resolved it)
  std::string workflows = ".";            // absolute once the service starts
  bool auto_resume = false;
  double resume_grace_s = 10;
  int max_resumes = 3;
  std::string token_env;  // the variable holding the bearer token; "" on loopback: none
  int max_runs = 4;       // child runs at once; the rest wait queued in the database
  std::string notify;     // webhook URL for alerts; "" for none
  std::string keel_path;  // the keel executable that child runs use (this one)
  std::string web_dir;    // --web-dir: the dashboard's files from disk; "" for the embedded ones
};

}  // namespace keel::service
