// `keel doctor` through the real binary: against keel-mock-llm (ok, a
// missing key, a wrong key), a closed port, an address that never answers
// the connection, a server that never answers the request (the timeouts
// hold), --json, --workflows --list, and the health option's checks. The
// key never appears in anything doctor prints.

#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <fcntl.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/json.h"
#include "tests/support/mock_llm_server.h"
#include "tests/support/sandbox.h"
#include "tests/support/subprocess.h"
#include "tests/support/webhook_receiver.h"

namespace keel::testing {
namespace {

constexpr char kKey[] = "sk-doctor-test-0123456789";

std::string Workflow(const std::string& providers) {
  return "local keel = require 'keel'\n" + providers +
         "return keel.workflow 'w' { keel.fn 'a' { run = function() return 1 end } }\n";
}

std::string Provider(const std::string& name, const std::string& url,
                     const std::string& extra = "") {
  return "keel.provider '" + name + "' { kind = 'openai', base_url = '" + url +
         "', model = 'gpt-test', api_key_env = 'DOCTOR_TEST_KEY'" + extra + " }\n";
}

ExitInfo Doctor(const Sandbox& box, const std::vector<std::string>& args,
                std::optional<std::string> key) {
  SpawnOptions options;
  options.args = {"doctor"};
  options.args.insert(options.args.end(), args.begin(), args.end());
  options.cwd = box.dir();
  options.env = {{"DOCTOR_TEST_KEY", key}};
  return RunProcess(KEEL_BIN, options, std::chrono::seconds(60));
}

void NoKey(const ExitInfo& info) {
  CHECK(info.out.find(kKey) == std::string::npos);
  CHECK(info.err.find(kKey) == std::string::npos);
  CHECK(info.out.find("wrong-key-xyz") == std::string::npos);
  CHECK(info.err.find("wrong-key-xyz") == std::string::npos);
}

// A loopback port whose accept queue is full: connections to it are never
// completed (the kernel drops their SYNs), as at a black-holed address.
class BlackHole {
 public:
  BlackHole() {
    listener_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(listen(listener_, 0) == 0);
    socklen_t len = sizeof addr;
    getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    for (int i = 0; i < 4; ++i) {
      int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
      connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
      fillers_.push_back(fd);
    }
    usleep(50000);
  }
  ~BlackHole() {
    for (int fd : fillers_) close(fd);
    close(listener_);
  }
  int port() const { return port_; }

 private:
  int listener_ = -1;
  int port_ = 0;
  std::vector<int> fillers_;
};

TEST_CASE("doctor passes a provider the mock answers, and never shows the key" *
          doctest::timeout(120)) {
  MockLlmServer server(MOCK_LLM_BIN, {"--require-key", kKey});
  Sandbox box(KEEL_BIN);
  box.Write("wf.lua", Workflow(Provider("main", server.url())));
  ExitInfo ok = Doctor(box, {"wf.lua"}, kKey);
  CHECK_MESSAGE(ok.exit_code == 0, ok.Describe());
  CHECK(ok.out.find("main: ok (key DOCTOR_TEST_KEY is set") == 0);
  CHECK(ok.out.find("request ") != std::string::npos);
  NoKey(ok);

  ExitInfo json = Doctor(box, {"wf.lua", "--json"}, kKey);
  CHECK(json.exit_code == 0);
  Json doc = Json::Parse(json.out);
  CHECK(doc["provider"].Str() == "main");
  CHECK(doc["result"].Str() == "ok");
  CHECK(doc["endpoint"].Str() == "http://127.0.0.1:" + std::to_string(server.port()));
  REQUIRE(doc["steps"].Size() == 4);
  CHECK(doc["steps"][0]["step"].Str() == "key");
  CHECK(doc["steps"][3]["step"].Str() == "request");
  CHECK(doc["steps"][3]["seconds"].IsNumber());
  NoKey(json);
  // One request, with at most one token asked for.
  Json log = server.WaitForLog([](const Json& l) { return l.Size() >= 2; });
  CHECK(log.Size() == 2);
}

TEST_CASE("doctor times the TLS handshake and names a certificate it cannot verify" *
          doctest::timeout(120)) {
  MockLlmServer server(MOCK_LLM_BIN, {}, MockLlmServer::Transport::kHttps);
  Sandbox box(KEEL_BIN);
  box.Write("wf.lua", Workflow(Provider("trusted", server.url(),
                                        ", ca_file = '" + server.ca_file() + "'") +
                               Provider("untrusted", server.url())));
  ExitInfo info = Doctor(box, {"wf.lua", "--json"}, kKey);
  CHECK(info.exit_code == 1);
  std::istringstream lines(info.out);
  std::string line;
  REQUIRE(std::getline(lines, line));
  Json trusted = Json::Parse(line);
  CHECK_MESSAGE(trusted["result"].Str() == "ok", line);
  REQUIRE(trusted["steps"].Size() == 5);
  CHECK(trusted["steps"][3]["step"].Str() == "tls");
  CHECK(trusted["steps"][3]["seconds"].IsNumber());
  REQUIRE(std::getline(lines, line));
  Json untrusted = Json::Parse(line);
  CHECK(untrusted["result"].Str() == "failed");
  CHECK_MESSAGE(untrusted["failed_step"].Str() == "tls", line);
  CHECK(untrusted["error"].Str().find("TLS handshake failed") == 0);
  NoKey(info);
}

TEST_CASE("doctor names a missing key and a refused one" * doctest::timeout(120)) {
  MockLlmServer server(MOCK_LLM_BIN, {"--require-key", kKey});
  Sandbox box(KEEL_BIN);
  box.Write("wf.lua", Workflow(Provider("main", server.url())));
  ExitInfo missing = Doctor(box, {"wf.lua"}, std::nullopt);
  CHECK(missing.exit_code == 1);
  CHECK(missing.out.find("main: FAILED at key: environment variable DOCTOR_TEST_KEY is not set") ==
        0);
  ExitInfo blank = Doctor(box, {"wf.lua"}, std::string("  "));
  CHECK(blank.exit_code == 1);
  CHECK(blank.out.find("DOCTOR_TEST_KEY is empty") != std::string::npos);
  ExitInfo wrong = Doctor(box, {"wf.lua", "--json"}, std::string("wrong-key-xyz"));
  CHECK(wrong.exit_code == 1);
  Json doc = Json::Parse(wrong.out);
  CHECK(doc["failed_step"].Str() == "request");
  CHECK(doc["error"].Str().find("HTTP 401") == 0);
  CHECK(doc["error"].Str().find("DOCTOR_TEST_KEY") != std::string::npos);
  NoKey(wrong);
}

TEST_CASE("doctor reports a closed port as connection refused" * doctest::timeout(60)) {
  Sandbox box(KEEL_BIN);
  int port = FreeLoopbackPort();
  box.Write("wf.lua", Workflow(Provider("main", "http://127.0.0.1:" + std::to_string(port) + "/v1")));
  ExitInfo info = Doctor(box, {"wf.lua"}, kKey);
  CHECK(info.exit_code == 1);
  CHECK_MESSAGE(info.out.find("main: FAILED at connect: connection refused") == 0, info.out);
}

TEST_CASE("doctor gives up on an address that never answers, at its timeout" *
          doctest::timeout(60)) {
  BlackHole hole;
  Sandbox box(KEEL_BIN);
  box.Write("wf.lua",
            Workflow(Provider("main", "http://127.0.0.1:" + std::to_string(hole.port()) + "/v1")));
  auto start = std::chrono::steady_clock::now();
  ExitInfo info = Doctor(box, {"wf.lua", "--timeout", "1"}, kKey);
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(info.exit_code == 1);
  CHECK_MESSAGE(info.out.find("main: FAILED at connect: timed out after 1 s") == 0, info.out);
  CHECK(took < 5);
}

TEST_CASE("doctor gives up on a request that never gets an answer" * doctest::timeout(60)) {
  MockLlmServer server(MOCK_LLM_BIN, {"--fail-first", "100", "--fail-mode", "hang"});
  Sandbox box(KEEL_BIN);
  box.Write("wf.lua", Workflow(Provider("main", server.url())));
  auto start = std::chrono::steady_clock::now();
  ExitInfo info = Doctor(box, {"wf.lua", "--timeout", "1"}, kKey);
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(info.exit_code == 1);
  CHECK_MESSAGE(info.out.find("main: FAILED at request: no answer within") == 0, info.out);
  CHECK(took < 6);
}

TEST_CASE("doctor: bad files and options exit 2; --provider picks one" * doctest::timeout(60)) {
  Sandbox box(KEEL_BIN);
  box.Write("wf.lua", Workflow(Provider("a", "http://127.0.0.1:1/v1") +
                               "keel.provider 'm' { kind = 'mock' }\n"));
  box.Write("broken.lua", "return 1 +\n");
  CHECK(Doctor(box, {"broken.lua"}, kKey).exit_code == 2);
  CHECK(Doctor(box, {"missing.lua"}, kKey).exit_code == 2);
  ExitInfo unknown = Doctor(box, {"wf.lua", "--provider", "zz"}, kKey);
  CHECK(unknown.exit_code == 2);
  CHECK(unknown.err.find("declares no such provider (it declares a, m)") != std::string::npos);
  ExitInfo mock = Doctor(box, {"wf.lua", "--provider", "m"}, kKey);
  CHECK(mock.exit_code == 0);
  CHECK(mock.out.find("m: ok") == 0);
  CHECK(Doctor(box, {}, kKey).exit_code == 2);
}

TEST_CASE("health intervals are checked, and --workflows --list finds them" *
          doctest::timeout(60)) {
  Sandbox box(KEEL_BIN);
  box.Write("neg.lua", Workflow(Provider("p", "http://h/v1", ", health = { interval = -1 }")));
  ExitInfo neg = box.Keel({"validate", "neg.lua"});
  CHECK(neg.exit_code == 2);
  CHECK_MESSAGE(neg.err.find("neg.lua:2:") != std::string::npos, neg.err);
  CHECK(neg.err.find("field 'interval' must be a number of seconds above 0") != std::string::npos);
  box.Write("typo.lua", Workflow(Provider("p", "http://h/v1", ", health = { intervall = 5 }")));
  ExitInfo typo = box.Keel({"validate", "typo.lua"});
  CHECK(typo.exit_code == 2);
  CHECK_MESSAGE(typo.err.find("unknown field 'intervall' (did you mean 'interval'?)") !=
                    std::string::npos,
                typo.err);
  box.Write("word.lua", Workflow(Provider("p", "http://h/v1", ", health = 5")));
  CHECK(box.Keel({"validate", "word.lua"}).err.find("{ interval = seconds }") !=
        std::string::npos);

  Sandbox dir(KEEL_BIN);
  dir.Write("a.lua", Workflow(Provider("watched", "http://h/v1", ", health = { interval = 30 }") +
                              Provider("plain", "http://h/v1")));
  std::filesystem::create_directories(dir.Path("lib"));
  dir.Write("lib/util.lua", "return {}\n");
  ExitInfo list = Doctor(dir, {"--workflows", ".", "--list", "--json"}, std::nullopt);
  CHECK_MESSAGE(list.exit_code == 0, list.Describe());
  Json doc = Json::Parse(list.out);
  CHECK(doc["provider"].Str() == "watched");
  CHECK(doc["file"].Str() == "a.lua");
  CHECK(doc["health_interval"].Num() == 30);
  CHECK(doc["result"].Str() == "pending");
  CHECK(list.err.find("skipped lib/util.lua") != std::string::npos);
}

}  // namespace
}  // namespace keel::testing
