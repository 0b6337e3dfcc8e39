// Agent nodes over HTTPS through the real `keel` binary, against
// keel-mock-llm serving TLS with a self-signed certificate: HTTP/2 by ALPN
// (or HTTP/1.1 with `http2 = false`), the provider's ca_file, and fault modes
// acting on single HTTP/2 streams.
#include <doctest/doctest.h>

#include <filesystem>
#include <set>
#include <string>

#include "tests/policy_test_util.h"
#include "tests/support/mock_llm_server.h"

namespace keel::testing {
namespace {

using Transport = MockLlmServer::Transport;

// A workflow whose provider "llm" speaks OpenAI to `server` with `ca_file`
// (and `extra` options), then `body`.
std::string Workflow(const MockLlmServer& server, const std::string& ca_file,
                     const std::string& body, const std::string& extra = "") {
  return "local keel = require 'keel'\n"
         "keel.provider 'llm' { kind = 'openai', base_url = '" +
         server.url() + "', model = 'mock-1', ca_file = '" + ca_file + "'" + extra +
         " }\n"
         "return keel.workflow 'w' {\n" +
         body + "}\n";
}

// `n` independent agents a1..aN.
std::string Agents(int n) {
  std::string body;
  for (int i = 1; i <= n; ++i) {
    body += "  keel.agent 'a" + std::to_string(i) + "' { provider = 'llm', prompt = 'q" +
            std::to_string(i) + "' },\n";
  }
  return body;
}

// The protocols of the chat requests in `log`, each once, sorted.
std::string Protocols(const Json& log) {
  std::set<std::string> seen;
  for (const Json& entry : LogEntries(log, "path", "/v1/chat/completions")) {
    seen.insert(entry["protocol"].Str());
  }
  std::string all;
  for (const std::string& protocol : seen) all += (all.empty() ? "" : ",") + protocol;
  return all;
}

}  // namespace

TEST_CASE("agents over https speak HTTP/2, or HTTP/1.1 when the provider says http2 = false" *
          doctest::timeout(120)) {
  MockLlmServer server(MOCK_LLM_BIN, {"--latency", "100"}, Transport::kHttps);
  Sandbox box(KEEL_BIN);
  std::string h2 = box.Write("h2.lua", Workflow(server, server.ca_file(), Agents(48)));
  Json run = RunJson(box, h2, 0);
  CHECK(run["outputs"]["a1"].Str() == "echo: q1");
  CHECK(run["outputs"]["a48"].Str() == "echo: q48");
  Json log = server.WaitForLog([](const Json& entries) { return entries.Size() >= 48; });
  CHECK(LogEntries(log, "path", "/v1/chat/completions").size() == 48);
  CHECK(Protocols(log) == "h2");

  MockLlmServer plain_tls(MOCK_LLM_BIN, {}, Transport::kHttps);
  std::string h1 =
      box.Write("h1.lua", Workflow(plain_tls, plain_tls.ca_file(), Agents(4), ", http2 = false"));
  RunJson(box, h1, 0);
  Json h1_log = plain_tls.WaitForLog([](const Json& entries) { return entries.Size() >= 4; });
  CHECK(Protocols(h1_log) == "http/1.1");

  // A server without HTTP/2: the calls that waited for the first connection
  // to tell go on over HTTP/1.1.
  MockLlmServer h1_only(MOCK_LLM_BIN, {"--no-http2", "--latency", "50"}, Transport::kHttps);
  std::string fallback = box.Write("h1_only.lua", Workflow(h1_only, h1_only.ca_file(), Agents(16)));
  CHECK(RunJson(box, fallback, 0)["outputs"]["a16"].Str() == "echo: q16");
  Json h1_only_log = h1_only.WaitForLog([](const Json& entries) { return entries.Size() >= 16; });
  CHECK(LogEntries(h1_only_log, "path", "/v1/chat/completions").size() == 16);
  CHECK(Protocols(h1_only_log) == "http/1.1");
}

TEST_CASE("ca_file is found next to the script, and a missing one stops the load" *
          doctest::timeout(60)) {
  MockLlmServer server(MOCK_LLM_BIN, {}, Transport::kHttps);
  Sandbox box(KEEL_BIN);
  std::filesystem::create_directories(box.Path("certs"));
  std::filesystem::copy_file(server.ca_file(), box.Path("certs/mock.pem"));
  std::string relative = box.Write("rel.lua", Workflow(server, "certs/mock.pem", Agents(1)));
  CHECK(RunJson(box, relative, 0)["outputs"]["a1"].Str() == "echo: q1");

  std::string missing = box.Write("missing.lua", Workflow(server, "certs/nope.pem", Agents(1)));
  ExitInfo r = box.KeelDb({"run", missing});
  INFO(r.Describe());
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("missing.lua:2: provider 'llm': option 'ca_file': cannot read " +
                   box.Path("certs/nope.pem") + ": No such file or directory") !=
        std::string::npos);
  CHECK(server.Log().Size() == 1);  // the first run's call only
}

TEST_CASE("without the server's certificate trusted, the call fails for good and says why" *
          doctest::timeout(60)) {
  MockLlmServer server(MOCK_LLM_BIN, {}, Transport::kHttps);
  Sandbox box(KEEL_BIN);
  std::string wf =
      box.Write("untrusted.lua",
                "local keel = require 'keel'\n"
                "keel.provider 'llm' { kind = 'openai', base_url = '" +
                    server.url() +
                    "' }\n"
                    "return keel.workflow 'w' { keel.agent 'a' { provider = 'llm', prompt = 'hi',\n"
                    "  retry = { attempts = 3, base = 0.01 } } }\n");
  Json run = RunJson(box, wf, 1);
  std::string error = run["nodes"]["a"]["error"].Str();
  INFO(error);
  // A retry would meet the same certificate: none is made.
  CHECK(run["nodes"]["a"]["error_kind"].Str() == "permanent");
  CHECK(run["nodes"]["a"]["attempts"].Int() == 1);
  CHECK(error.find("certificate") != std::string::npos);
}

TEST_CASE("over HTTP/2, faults hit one stream: kinds and policies as over HTTP/1.1" *
          doctest::timeout(120)) {
  MockLlmServer server(MOCK_LLM_BIN, {}, Transport::kHttps);
  Sandbox box(KEEL_BIN);
  auto agent = [](const std::string& name, const std::string& directives,
                  const std::string& extra = "") {
    return "  keel.agent '" + name + "' { provider = 'llm', optional = true, prompt = '" + name +
           " " + directives + "', retry = { attempts = 2, base = 0.01, jitter = 'none' }" + extra +
           " },\n";
  };
  std::string body =
      agent("s503", "[[mock:fault=503]][[mock:times=1]]") +
      agent("limited", "[[mock:fault=429]][[mock:times=1]][[mock:retry_after=0.2]]") +
      agent("denied", "[[mock:fault=401]]") +
      agent("truncated", "[[mock:fault=truncated]][[mock:times=1]]") +
      agent("reset", "[[mock:fault=reset]][[mock:times=1]]") +
      agent("hang", "[[mock:fault=hang]]", ", timeout = 0.5") +
      agent("calm", "[[mock:latency=300]]");
  std::string wf = box.Write("faults.lua", Workflow(server, server.ca_file(), body));
  Json run = RunJson(box, wf, 3);
  Json show = box.Show(run["run_id"].Str(), true);
  auto node = [&](const std::string& name) { return NodeEntry(show["nodes"], name); };
  for (const char* healed : {"s503", "limited", "truncated", "reset"}) {
    INFO(healed << ": " << node(healed).Dump());
    CHECK(node(healed)["status"].Str() == "succeeded");
    CHECK(node(healed)["attempts"].Int() == 2);
  }
  CHECK(Events(show, "retry_scheduled", "limited")[0]["data"]["after"].Str() == "rate_limited");
  CHECK(Events(show, "retry_scheduled", "reset")[0]["data"]["after"].Str() == "transient");
  CHECK(node("denied")["status"].Str() == "failed");
  CHECK(node("denied")["attempts"].Int() == 1);
  CHECK(node("hang")["status"].Str() == "failed");
  CHECK(node("hang")["error_kind"].Str() == "timeout");
  CHECK(node("calm")["status"].Str() == "succeeded");
  // The hung streams were reset by keel at the timeout; the server saw each go.
  Json log = server.WaitForLog([](const Json& entries) {
    auto hung = LogEntries(entries, "user", "hang");
    return hung.size() == 2 && hung[0]["outcome"].Str() == "client_closed" &&
           hung[1]["outcome"].Str() == "client_closed";
  });
  auto hung = LogEntries(log, "user", "hang");
  REQUIRE(hung.size() == 2);
  CHECK(hung[0]["outcome"].Str() == "client_closed");
  CHECK(Protocols(log) == "h2");
}

}  // namespace keel::testing
