#pragma once
// MockLlmServer: one keel-mock-llm process on an ephemeral loopback port,
// plain HTTP or HTTPS (HTTP/2 and HTTP/1.1 over TLS, with a self-signed
// certificate), for tests that point keel's providers at it. Killed when it
// goes away. Use from one thread.

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/json.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"

namespace keel::testing {

class MockLlmServer {
 public:
  enum class Transport { kHttp, kHttps };

  // Starts `binary` with `args` (besides --port 0, and with kHttps
  // --tls-self-signed FILE) and waits for its "listening on" line. Throws
  // std::runtime_error when it does not come up.
  MockLlmServer(const std::string& binary, std::vector<std::string> args,
                Transport transport = Transport::kHttp);

  int port() const { return port_; }
  bool tls() const { return tls_dir_ != nullptr; }
  // The base URL a provider uses: http://127.0.0.1:PORT/v1, or https://...
  std::string url() const;
  // With kHttps: the server's certificate (PEM), for a client to trust
  // (curl's CURLOPT_CAINFO, keel's ca_file); "" for plain HTTP.
  std::string ca_file() const;
  // The request log (GET /log, over HTTPS with kHttps): one object per
  // finished request.
  Json Log() const;
  // Polls the log until `done(log)` holds or `timeout` passes; returns the
  // last log read.
  Json WaitForLog(const std::function<bool(const Json&)>& done,
                  std::chrono::milliseconds timeout = std::chrono::seconds(20)) const;
  Subprocess& process() { return *process_; }

 private:
  std::unique_ptr<TempDir> tls_dir_;  // holds ca_file(); null for plain HTTP
  std::unique_ptr<Subprocess> process_;
  int port_ = 0;
};

// Entries of `log` whose `field` (a string) contains `needle`.
std::vector<Json> LogEntries(const Json& log, const std::string& field, const std::string& needle);

}  // namespace keel::testing
