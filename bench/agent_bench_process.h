#pragma once
// Child processes of agent_bench: a command run to completion, with its wall
// time, CPU time and peak RSS, and the mock LLM server kept running in the
// background for the length of the bench.
//
// Both are started with fork + exec. A forked child's peak RSS (ru_maxrss)
// starts from the anonymous memory this process has at the fork, so commands
// whose RSS matters are best run before this process grows.

#include <sys/types.h>

#include <string>
#include <vector>

namespace keel::bench {

struct ChildRun {
  bool ok = false;       // started and exited 0
  double wall_s = 0;     // fork to exit
  double output_s = 0;   // fork to the first bytes on stdout
  double cpu_s = 0;      // user + system
  long peak_rss_kb = 0;  // ru_maxrss
  std::string out;       // stdout
};

// Runs `args` (args[0] a path) to completion; its stderr goes to `err_path`.
ChildRun RunChild(const std::vector<std::string>& args, const std::string& err_path);

// keel-mock-llm on an ephemeral loopback port.
class MockLlm {
 public:
  // Starts `binary --latency MS --port 0` and reads the port from its first
  // line; port() is 0 when it did not start within a few seconds. With a
  // `ca_file`, serves HTTPS (HTTP/2 or HTTP/1.1 by ALPN) with a self-signed
  // certificate it writes there.
  MockLlm(const std::string& binary, int latency_ms, const std::string& ca_file = "");
  ~MockLlm();  // SIGTERM, then reaps it
  MockLlm(const MockLlm&) = delete;
  MockLlm& operator=(const MockLlm&) = delete;

  int port() const { return port_; }
  std::string base_url() const;  // http://127.0.0.1:PORT, or https://
  // CPU seconds (user + system) the server has used so far.
  double cpu_seconds() const;

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  std::string scheme_ = "http";
};

}  // namespace keel::bench
