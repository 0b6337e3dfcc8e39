#pragma once
// MockLlmServer: one keel-mock-llm process on an ephemeral loopback port,
// for tests that point keel's providers at it. Killed when it goes away.
// Use from one thread.

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/json.h"
#include "tests/support/subprocess.h"

namespace keel::testing {

class MockLlmServer {
 public:
  // Starts `binary` with `args` (besides --port 0) and waits for its
  // "listening on" line. Throws std::runtime_error when it does not come up.
  MockLlmServer(const std::string& binary, std::vector<std::string> args);

  int port() const { return port_; }
  // The base URL a provider uses: http://127.0.0.1:PORT/v1
  std::string url() const;
  // The request log (GET /log): one object per finished request.
  Json Log() const;
  // Polls the log until `done(log)` holds or `timeout` passes; returns the
  // last log read.
  Json WaitForLog(const std::function<bool(const Json&)>& done,
                  std::chrono::milliseconds timeout = std::chrono::seconds(20)) const;
  Subprocess& process() { return *process_; }

 private:
  std::unique_ptr<Subprocess> process_;
  int port_ = 0;
};

// Entries of `log` whose `field` (a string) contains `needle`.
std::vector<Json> LogEntries(const Json& log, const std::string& field, const std::string& needle);

}  // namespace keel::testing
