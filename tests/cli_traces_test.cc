// OpenTelemetry traces through the real `keel` binary: a fake collector (an
// httplib::Server on loopback) receives the spans of runs with a retried
// node, a fallback and an agent node against keel-mock-llm; a resume
// continues the trace; a collector that is down or black-holed does not slow
// the run; the overhead on a 1,000-node run.
#include <doctest/doctest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "tests/support/json.h"
#include "tests/support/keel_cli.h"
#include "tests/support/mock_llm_server.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"

namespace keel::testing {
namespace {

using Env = std::vector<std::pair<std::string, std::optional<std::string>>>;

// An OTLP/HTTP collector on loopback that keeps every request to /v1/traces.
class FakeCollector {
 public:
  FakeCollector() {
    server_.Post("/v1/traces", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard<std::mutex> lock(mu_);
      bodies_.push_back(req.body);
      content_types_.push_back(req.get_header_value("Content-Type"));
      test_headers_.push_back(req.get_header_value("X-Test"));
      res.set_content("{}", "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // Bound already: connections wait in the backlog until it listens.
  }
  ~FakeCollector() {
    server_.stop();
    thread_.join();
  }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<std::string> bodies() const {
    std::lock_guard<std::mutex> lock(mu_);
    return bodies_;
  }
  std::vector<std::string> content_types() const {
    std::lock_guard<std::mutex> lock(mu_);
    return content_types_;
  }
  std::vector<std::string> test_headers() const {
    std::lock_guard<std::mutex> lock(mu_);
    return test_headers_;
  }
  void Clear() {
    std::lock_guard<std::mutex> lock(mu_);
    bodies_.clear();
    content_types_.clear();
    test_headers_.clear();
  }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  mutable std::mutex mu_;
  std::vector<std::string> bodies_;
  std::vector<std::string> content_types_;
  std::vector<std::string> test_headers_;
};

// Every span of every body, each body checked for the OTLP JSON envelope.
std::vector<Json> Spans(const std::vector<std::string>& bodies, const std::string& service) {
  std::vector<Json> spans;
  for (const std::string& body : bodies) {
    Json doc = Json::Parse(body);  // throws on invalid JSON
    Json rs = doc["resourceSpans"];
    REQUIRE(rs.Size() == 1);
    bool named = false;
    Json attrs = rs[0]["resource"]["attributes"];
    for (size_t i = 0; i < attrs.Size(); ++i) {
      if (attrs[i]["key"].Str() == "service.name") {
        named = attrs[i]["value"]["stringValue"].Str() == service;
      }
    }
    CHECK_MESSAGE(named, body);
    Json ss = rs[0]["scopeSpans"];
    REQUIRE(ss.Size() == 1);
    CHECK(ss[0]["scope"]["name"].Str() == "keel");
    for (size_t i = 0; i < ss[0]["spans"].Size(); ++i) spans.push_back(ss[0]["spans"][i]);
  }
  return spans;
}

std::vector<Json> Named(const std::vector<Json>& spans, const std::string& name) {
  std::vector<Json> out;
  for (const Json& s : spans) {
    if (s["name"].Str() == name) out.push_back(s);
  }
  return out;
}

// The value of attribute `key` of `span` ({"stringValue": ...} etc.); null when absent.
Json Attr(const Json& span, const std::string& key) {
  Json attrs = span["attributes"];
  for (size_t i = 0; i < attrs.Size(); ++i) {
    if (attrs[i]["key"].Str() == key) return attrs[i]["value"];
  }
  return Json::Null();
}

std::vector<std::string> EventNames(const Json& span) {
  std::vector<std::string> names;
  for (size_t i = 0; i < span["events"].Size(); ++i) names.push_back(span["events"][i]["name"].Str());
  return names;
}

bool Has(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

bool Hex(const std::string& text, size_t digits) {
  if (text.size() != digits) return false;
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return text.find_first_not_of('0') != std::string::npos;
}

bool Digits(const std::string& text) {
  return !text.empty() && text.find_first_not_of("0123456789") == std::string::npos;
}

// The workflow of the tests: `flaky` fails once and is retried, `dead`
// fails and its fallback answers, `writer` asks the mock LLM.
std::string Workflow(const MockLlmServer& llm) {
  return "local keel = require 'keel'\n"
         "keel.provider 'llm' { kind = 'openai', base_url = '" + llm.url() +
         "', model = 'mock-1' }\n"
         "keel.workflow 'cached' { keel.fn 'lookup' { run = function() return { v = 1 } end } }\n"
         "return keel.workflow 'traced' {\n"
         "  keel.fn 'flaky' { retry = { attempts = 3, base = 0.01, jitter = 'none' },\n"
         "    run = function(ctx)\n"
         "      if ctx.attempt < 2 then keel.fail { kind = 'transient', message = 'boom' } end\n"
         "      return { attempt = ctx.attempt }\n"
         "    end },\n"
         "  keel.fn 'dead' { fallback = 'cached',\n"
         "    run = function() keel.fail { kind = 'permanent', message = 'gone' } end },\n"
         "  keel.agent 'writer' { provider = 'llm', after = { 'flaky' }, prompt = 'say hi' },\n"
         "}\n";
}

struct Timed {
  ExitInfo info;
  double seconds = 0;
};

Timed Keel(const TempDir& dir, const std::vector<std::string>& args, const Env& env) {
  Env full = {{"KEEL_DB", std::nullopt},
              {"OTEL_EXPORTER_OTLP_ENDPOINT", std::nullopt},
              {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", std::nullopt},
              {"OTEL_SDK_DISABLED", std::nullopt},
              {"OTEL_SERVICE_NAME", std::nullopt},
              {"OTEL_EXPORTER_OTLP_HEADERS", std::nullopt}};
  full.insert(full.end(), env.begin(), env.end());
  auto start = std::chrono::steady_clock::now();
  ExitInfo info = RunProcess(KEEL_BIN, {.args = args, .cwd = dir.path(), .env = full},
                             std::chrono::seconds(60));
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return {std::move(info), seconds};
}

// A loopback port nothing listens on.
int ClosedPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

// A listening socket that never accepts nor answers: connections complete
// in the kernel's backlog and then hang.
class BlackHole {
 public:
  BlackHole() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(listen(fd_, 16) == 0);
    socklen_t len = sizeof addr;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~BlackHole() { close(fd_); }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

}  // namespace

TEST_CASE("a run's spans: names, links, attributes and policy events" * doctest::timeout(120)) {
  MockLlmServer llm(MOCK_LLM_BIN, {});
  FakeCollector collector;
  TempDir dir;
  dir.Write("traced.lua", Workflow(llm));
  Env env = {{"OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint()},
             {"OTEL_SERVICE_NAME", "keel-test"},
             {"OTEL_EXPORTER_OTLP_HEADERS", "x-test=a%20b"}};
  Timed run = Keel(dir, {"run", "traced.lua", "--db", dir.Path("t.db")}, env);
  REQUIRE_MESSAGE(run.info.exit_code == 0, run.info.Describe());
  std::string run_id = RunIdFromStderr(run.info.err);
  REQUIRE(!run_id.empty());

  std::vector<std::string> bodies = collector.bodies();
  REQUIRE(!bodies.empty());
  for (const std::string& type : collector.content_types()) CHECK(type == "application/json");
  for (const std::string& header : collector.test_headers()) CHECK(header == "a b");
  std::vector<Json> spans = Spans(bodies, "keel-test");

  std::vector<Json> runs = Named(spans, "invoke_workflow traced");
  REQUIRE(runs.size() == 1);
  const Json& root = runs[0];
  std::string trace = root["traceId"].Str();
  CHECK(Hex(trace, 32));
  CHECK(root["parentSpanId"].IsNull());
  CHECK(Attr(root, "gen_ai.operation.name")["stringValue"].Str() == "invoke_workflow");
  CHECK(Attr(root, "keel.run.id")["stringValue"].Str() == run_id);
  CHECK(Attr(root, "keel.run.status")["stringValue"].Str() == "succeeded");
  CHECK(root["status"]["code"].Int() == 1);

  for (const Json& s : spans) {
    INFO(s.Dump());
    CHECK(s["traceId"].Str() == trace);
    CHECK(Hex(s["spanId"].Str(), 16));
    CHECK(Digits(s["startTimeUnixNano"].Str()));
    CHECK(Digits(s["endTimeUnixNano"].Str()));
    CHECK(std::stoll(s["endTimeUnixNano"].Str()) >= std::stoll(s["startTimeUnixNano"].Str()));
  }
  std::string root_id = root["spanId"].Str();

  // flaky: two attempts, the first failed with the retry as its event.
  std::vector<Json> flaky = Named(spans, "execute_tool flaky");
  REQUIRE(flaky.size() == 2);
  std::map<int64_t, Json> by_attempt;
  for (const Json& s : flaky) {
    CHECK(s["parentSpanId"].Str() == root_id);
    CHECK(Attr(s, "gen_ai.operation.name")["stringValue"].Str() == "execute_tool");
    CHECK(Attr(s, "gen_ai.tool.name")["stringValue"].Str() == "flaky");
    by_attempt.emplace(std::stoll(Attr(s, "keel.attempt")["intValue"].Str()), s);
  }
  REQUIRE(by_attempt.count(1) == 1);
  REQUIRE(by_attempt.count(2) == 1);
  CHECK(by_attempt.at(1)["status"]["code"].Int() == 2);
  CHECK(by_attempt.at(1)["status"]["message"].Str() == "boom");
  CHECK(Attr(by_attempt.at(1), "error.type")["stringValue"].Str() == "transient");
  CHECK(Has(EventNames(by_attempt.at(1)), "retry_scheduled"));
  CHECK(by_attempt.at(2)["status"]["code"].Int() == 1);
  CHECK(Attr(by_attempt.at(2), "keel.node.status")["stringValue"].Str() == "succeeded");

  // dead: failed, then its fallback answered.
  std::vector<Json> dead = Named(spans, "execute_tool dead");
  REQUIRE(dead.size() == 1);
  CHECK(Has(EventNames(dead[0]), "fallback_started"));
  CHECK(Has(EventNames(dead[0]), "fallback_finished"));
  CHECK(Attr(dead[0], "error.type")["stringValue"].Str() == "permanent");
  CHECK(Attr(dead[0], "keel.node.status")["stringValue"].Str() == "fallback");

  // writer: an agent span with one chat span under it.
  std::vector<Json> writer = Named(spans, "invoke_agent writer");
  REQUIRE(writer.size() == 1);
  CHECK(writer[0]["parentSpanId"].Str() == root_id);
  CHECK(Attr(writer[0], "gen_ai.agent.name")["stringValue"].Str() == "writer");
  std::vector<Json> chat = Named(spans, "chat mock-1");
  REQUIRE(chat.size() == 1);
  const Json& c = chat[0];
  CHECK(c["parentSpanId"].Str() == writer[0]["spanId"].Str());
  CHECK(c["kind"].Int() == 3);  // CLIENT
  CHECK(Attr(c, "gen_ai.operation.name")["stringValue"].Str() == "chat");
  CHECK(Attr(c, "gen_ai.provider.name")["stringValue"].Str() == "openai");
  CHECK(Attr(c, "gen_ai.request.model")["stringValue"].Str() == "mock-1");
  CHECK(!Attr(c, "gen_ai.response.model")["stringValue"].Str().empty());
  CHECK(std::stoll(Attr(c, "gen_ai.usage.input_tokens")["intValue"].Str()) > 0);
  CHECK(std::stoll(Attr(c, "gen_ai.usage.output_tokens")["intValue"].Str()) > 0);
  CHECK(Attr(c, "server.address")["stringValue"].Str() == "127.0.0.1");
  CHECK(std::stoll(Attr(c, "server.port")["intValue"].Str()) == llm.port());
  CHECK(Attr(c, "error.type").IsNull());

  // A resume of the run (--from writer) continues the same trace, under
  // the first run span.
  collector.Clear();
  Timed resume = Keel(dir, {"resume", run_id, "--from", "writer", "--db", dir.Path("t.db")}, env);
  REQUIRE_MESSAGE(resume.info.exit_code == 0, resume.info.Describe());
  std::vector<Json> again = Spans(collector.bodies(), "keel-test");
  std::vector<Json> resumed = Named(again, "invoke_workflow traced");
  REQUIRE(resumed.size() == 1);
  CHECK(resumed[0]["parentSpanId"].Str() == root_id);
  CHECK(resumed[0]["spanId"].Str() != root_id);
  CHECK(Attr(resumed[0], "keel.resumed")["boolValue"].Bool());
  CHECK(Named(again, "invoke_agent writer").size() == 1);
  for (const Json& s : again) CHECK(s["traceId"].Str() == trace);
}

TEST_CASE("a failed LLM call is a chat span with error.type; OTEL_SDK_DISABLED sends nothing" *
          doctest::timeout(120)) {
  MockLlmServer llm(MOCK_LLM_BIN, {});
  FakeCollector collector;
  TempDir dir;
  dir.Write("fail.lua", "local keel = require 'keel'\n"
                        "keel.provider 'llm' { kind = 'openai', base_url = '" + llm.url() +
                        "', model = 'mock-1' }\n"
                        "return keel.workflow 'failing' {\n"
                        "  keel.agent 'asker' { provider = 'llm', prompt = 'x [[mock:fault=401]]' },\n"
                        "}\n");
  Env env = {{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", collector.endpoint() + "/v1/traces"}};
  Timed run = Keel(dir, {"run", "fail.lua", "--db", dir.Path("t.db")}, env);
  CHECK_MESSAGE(run.info.exit_code == 1, run.info.Describe());
  std::vector<Json> spans = Spans(collector.bodies(), "keel");
  std::vector<Json> chat = Named(spans, "chat mock-1");
  REQUIRE(chat.size() == 1);
  CHECK(chat[0]["status"]["code"].Int() == 2);
  CHECK(!Attr(chat[0], "error.type")["stringValue"].Str().empty());
  std::vector<Json> root = Named(spans, "invoke_workflow failing");
  REQUIRE(root.size() == 1);
  CHECK(root[0]["status"]["code"].Int() == 2);

  collector.Clear();
  env.push_back({"OTEL_SDK_DISABLED", "true"});
  run = Keel(dir, {"run", "fail.lua", "--db", dir.Path("t.db")}, env);
  CHECK(run.info.exit_code == 1);
  CHECK(collector.bodies().empty());
}

TEST_CASE("a collector that is down or black-holed neither slows nor fails a run" *
          doctest::timeout(180)) {
  MockLlmServer llm(MOCK_LLM_BIN, {});
  TempDir dir;
  dir.Write("traced.lua", Workflow(llm));
  auto run = [&](const Env& env) {
    Timed t = Keel(dir, {"run", "traced.lua", "--db", dir.Path("t.db")}, env);
    INFO(t.info.Describe());
    CHECK(t.info.exit_code == 0);
    return t.seconds;
  };
  // Best of two each, so that one run slowed by a loaded machine (or a
  // sanitizer) does not decide. Under load, runs against the black hole
  // have been seen taking 1.3-1.4 s more than those without an endpoint
  // (the exit wait is 0.3 s; the rest is not explained yet), so the bound
  // leaves 1.6 s. A process that waited for the export's timeout (2 s) or
  // longer fails it.
  const std::string endpoint = "OTEL_EXPORTER_OTLP_ENDPOINT";
  Env closed = {{endpoint, "http://127.0.0.1:" + std::to_string(ClosedPort())}};
  BlackHole hole;
  Env holed_env = {{endpoint, "http://127.0.0.1:" + std::to_string(hole.port())}};
  double base = std::min(run({}), run({}));
  double down = std::min(run(closed), run(closed));
  double holed = std::min(run(holed_env), run(holed_env));
  MESSAGE("run without endpoint " << base << " s, collector down " << down
                                   << " s, black-holed " << holed << " s");
  CHECK(down < 1.5 * base + 1.6);
  CHECK(holed < 1.5 * base + 1.6);
}

TEST_CASE("overhead of traces on a 1,000-node run" * doctest::timeout(300)) {
  FakeCollector collector;
  TempDir dir;
  dir.Write("wide.lua",
            "local keel = require 'keel'\n"
            "local nodes = {}\n"
            "for i = 1, 1000 do\n"
            "  nodes[#nodes + 1] = keel.fn('n' .. i) { run = function() return i end }\n"
            "end\n"
            "return keel.workflow 'wide' (nodes)\n");
  auto run = [&](const Env& env) {
    Timed t = Keel(dir, {"run", "wide.lua", "--db", dir.Path("w.db")}, env);
    INFO(t.info.Describe());
    CHECK(t.info.exit_code == 0);
    return t.seconds;
  };
  Env traced = {{"OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint()}};
  run({});  // warm the page cache
  double plain = 1e9, with = 1e9;
  for (int i = 0; i < 3; ++i) {
    plain = std::min(plain, run({}));
    collector.Clear();
    with = std::min(with, run(traced));
  }
  std::vector<Json> spans = Spans(collector.bodies(), "keel");
  CHECK(spans.size() == 1001);  // the run and one span per node
  MESSAGE("1,000-node run: " << plain << " s without an endpoint, " << with
                             << " s exporting to a collector (" << with / plain << "x)");
  CHECK(with < 2 * plain + 0.5);
}

}  // namespace keel::testing
