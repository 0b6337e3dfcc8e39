#include "tests/support/mock_llm_server.h"

#include <httplib.h>

#include <stdexcept>
#include <thread>

namespace keel::testing {

MockLlmServer::MockLlmServer(const std::string& binary, std::vector<std::string> args,
                             Transport transport) {
  SpawnOptions options;
  options.args = {"--port", "0"};
  if (transport == Transport::kHttps) {
    tls_dir_ = std::make_unique<TempDir>();
    options.args.insert(options.args.end(), {"--tls-self-signed", ca_file()});
  }
  options.args.insert(options.args.end(), args.begin(), args.end());
  process_ = std::make_unique<Subprocess>(binary, options);
  const std::string prefix =
      std::string("listening on ") + (tls() ? "https" : "http") + "://127.0.0.1:";
  auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (process_->Stdout().find('\n') == std::string::npos) {
    if (process_->Exited() || std::chrono::steady_clock::now() > give_up) {
      throw std::runtime_error("keel-mock-llm did not start: " + process_->Stderr());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::string out = process_->Stdout();
  if (out.rfind(prefix, 0) != 0) throw std::runtime_error("keel-mock-llm printed: " + out);
  port_ = std::stoi(out.substr(prefix.size()));
}

std::string MockLlmServer::url() const {
  return std::string(tls() ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_) + "/v1";
}

std::string MockLlmServer::ca_file() const { return tls() ? tls_dir_->Path("ca.pem") : ""; }

Json MockLlmServer::Log() const {
  // httplib::Client takes an https:// URL and then verifies the server
  // against the CA file.
  httplib::Client client(tls() ? "https://127.0.0.1:" + std::to_string(port_)
                               : "http://127.0.0.1:" + std::to_string(port_));
  if (tls()) client.set_ca_cert_path(ca_file());
  client.set_read_timeout(10, 0);
  auto res = client.Get("/log");
  if (!res || res->status != 200) throw std::runtime_error("GET /log failed");
  return Json::Parse(res->body);
}

Json MockLlmServer::WaitForLog(const std::function<bool(const Json&)>& done,
                               std::chrono::milliseconds timeout) const {
  auto give_up = std::chrono::steady_clock::now() + timeout;
  Json log = Log();
  while (!done(log) && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    log = Log();
  }
  return log;
}

std::vector<Json> LogEntries(const Json& log, const std::string& field, const std::string& needle) {
  std::vector<Json> found;
  for (size_t i = 0; i < log.Size(); ++i) {
    if (log[i][field].Str().find(needle) != std::string::npos) found.push_back(log[i]);
  }
  return found;
}

}  // namespace keel::testing
