#pragma once
// ServeProcess: a real `keel serve` started by a test on 127.0.0.1 with a
// free port (it reads the port from the "listening on" line), and a plain
// HTTP client for it. Not thread-safe except Get/Post, which make their own
// connection per call; the destructor kills the server if it still runs.

#include <httplib.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/subprocess.h"

namespace keel::testing {

class ServeProcess {
 public:
  // Starts `keel serve --listen 127.0.0.1:0 --db DB ARGS...` in `cwd` with
  // `env` changes and waits (up to 20 s) for it to listen. Throws
  // std::runtime_error with its output when it does not.
  ServeProcess(const std::string& keel, const std::string& cwd, const std::string& db,
               const std::vector<std::string>& args = {},
               const std::vector<std::pair<std::string, std::optional<std::string>>>& env = {});

  int port() const { return port_; }
  Subprocess& process() { return *process_; }

  // A client for the server with short timeouts.
  std::unique_ptr<httplib::Client> Client() const;

 private:
  std::unique_ptr<Subprocess> process_;
  int port_ = 0;
};

// Sends `bytes` on a new connection to 127.0.0.1:`port`, then reads until
// a whole response came, the server closes the connection or `timeout_ms`
// passes; returns what it read.
std::string RawExchange(int port, const std::string& bytes, int timeout_ms = 3000);

}  // namespace keel::testing
