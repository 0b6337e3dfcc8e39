// Agent nodes through the real `keel` binary against keel-mock-llm over
// loopback: fault modes and the policies they trigger, transfers aborted on
// timeout and cancellation, API keys kept out of the database, hedging,
// budgets and provider redirection.
#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "tests/policy_test_util.h"
#include "tests/support/mock_llm_server.h"

namespace keel::testing {
namespace {

// A workflow file whose provider "llm" speaks OpenAI to `server`, then `body`
// (the workflow's entries).
std::string Workflow(const MockLlmServer& server, const std::string& body,
                     const std::string& provider_extra = "") {
  return "local keel = require 'keel'\n"
         "keel.provider 'llm' { kind = 'openai', base_url = '" + server.url() +
         "', model = 'mock-1'" + provider_extra + " }\n"
         "return keel.workflow 'w' {\n" + body + "\n}\n";
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

// True when the server saw the client close the connection of `entry`.
bool ClosedByClient(const Json& entry) {
  std::string outcome = entry["outcome"].Str();
  return outcome == "client_closed" || outcome == "hang_closed";
}

}  // namespace

TEST_CASE("every fault mode maps to its kind, and the policies react to it" *
          doctest::timeout(120)) {
  MockLlmServer server(MOCK_LLM_BIN, {});
  Sandbox box(KEEL_BIN);
  auto agent = [](const std::string& name, const std::string& directives,
                  const std::string& extra = "") {
    return "  keel.agent '" + name + "' { provider = 'llm', optional = true, prompt = '" + name +
           " " + directives + "', retry = { attempts = 2, base = 0.01, jitter = 'none' }" + extra +
           " },\n";
  };
  std::string body =
      agent("s500", "[[mock:fault=500]][[mock:times=1]]") +
      agent("s503", "[[mock:fault=503]][[mock:times=1]]") +
      agent("limited", "[[mock:fault=429]][[mock:times=1]][[mock:retry_after=0.4]]") +
      agent("denied", "[[mock:fault=401]]") + agent("bad_request", "[[mock:fault=400]]") +
      agent("malformed", "[[mock:fault=malformed]][[mock:times=1]]") +
      agent("truncated", "[[mock:fault=truncated]][[mock:times=1]]") +
      agent("reset", "[[mock:fault=reset]]") +
      agent("hang", "[[mock:fault=hang]]", ", timeout = 0.5") +
      agent("wrong_shape", "[[mock:reply={\"y\": 1}]]",
            ", output = { type = 'object', required = { 'x' } }") +
      agent("not_json", "[[mock:reply=plain words]]", ", output = 'json'");
  std::string wf = box.Write("faults.lua", Workflow(server, body));
  Json run = RunJson(box, wf, 3);
  Json show = box.Show(run["run_id"].Str(), true);
  auto node = [&](const std::string& name) { return NodeEntry(show["nodes"], name); };
  for (const char* healed : {"s500", "s503", "limited", "malformed", "truncated"}) {
    INFO(healed << ": " << node(healed).Dump());
    CHECK(node(healed)["status"].Str() == "succeeded");
    CHECK(node(healed)["attempts"].Int() == 2);
  }
  // The first attempts' kinds, from the retries they scheduled.
  auto retry_after = [&](const std::string& name) {
    auto retries = Events(show, "retry_scheduled", name);
    REQUIRE(retries.size() == 1);
    return retries[0]["data"];
  };
  CHECK(retry_after("s500")["after"].Str() == "transient");
  CHECK(retry_after("malformed")["after"].Str() == "transient");
  CHECK(retry_after("truncated")["after"].Str() == "transient");
  // libcurl sends a request again once when a reused connection turns out
  // dead, so a reset is only seen when it happens every time.
  CHECK(node("reset")["error_kind"].Str() == "transient");
  CHECK(node("reset")["attempts"].Int() == 2);
  CHECK(retry_after("limited")["after"].Str() == "rate_limited");
  CHECK(retry_after("limited")["delay"].Num() >= 0.4);  // Retry-After is a floor
  for (const char* permanent : {"denied", "bad_request"}) {
    INFO(permanent << ": " << node(permanent).Dump());
    CHECK(node(permanent)["status"].Str() == "failed");
    CHECK(node(permanent)["error_kind"].Str() == "permanent");
    CHECK(node(permanent)["attempts"].Int() == 1);  // never retried
  }
  CHECK(node("hang")["error_kind"].Str() == "timeout");
  CHECK(node("hang")["attempts"].Int() == 2);
  for (const char* invalid : {"wrong_shape", "not_json"}) {
    INFO(invalid << ": " << node(invalid).Dump());
    CHECK(node(invalid)["error_kind"].Str() == "transient");
    CHECK(node(invalid)["attempts"].Int() == 2);
  }
  CHECK(node("wrong_shape")["error"].Str().find("schema") != std::string::npos);
  // Both timed-out attempts closed their connections.
  Json log = server.WaitForLog([](const Json& entries) {
    auto hung = LogEntries(entries, "user", "hang");
    return hung.size() == 2 && ClosedByClient(hung[0]) && ClosedByClient(hung[1]);
  });
  auto hung = LogEntries(log, "user", "hang");
  REQUIRE(hung.size() == 2);
  CHECK(ClosedByClient(hung[0]));
  CHECK(ClosedByClient(hung[1]));
}

TEST_CASE("a cancelled `any` loser's request is aborted" * doctest::timeout(60)) {
  MockLlmServer server(MOCK_LLM_BIN, {});
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write(
      "race.lua",
      Workflow(server,
               "  keel.agent 'slow' { provider = 'llm', prompt = 'slow [[mock:latency=30000]]' },\n"
               "  keel.agent 'fast' { provider = 'llm', prompt = 'fast' },\n"
               "  keel.fn 'first' { after = { 'slow', 'fast' }, join = 'any',\n"
               "    run = function(ctx) return ctx.deps.fast end },\n"));
  auto started = std::chrono::steady_clock::now();
  Json run = RunJson(box, wf, 0);
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(20));
  CHECK(run["outputs"]["first"].Str() == "echo: fast");
  Json log = server.WaitForLog([](const Json& entries) {
    auto slow = LogEntries(entries, "user", "slow");
    return slow.size() == 1 && ClosedByClient(slow[0]);
  });
  auto slow = LogEntries(log, "user", "slow");
  REQUIRE(slow.size() == 1);
  CHECK(ClosedByClient(slow[0]));
  Json show = box.Show(run["run_id"].Str());
  CHECK(NodeEntry(show["nodes"], "slow")["status"].Str() == "cancelled");
}

TEST_CASE("API keys reach the server but never the database, events or messages" *
          doctest::timeout(60)) {
  const std::string key = "sk-keel-test-7f3a9c1e5b";
  MockLlmServer server(MOCK_LLM_BIN, {"--require-key", key});
  Sandbox box(KEEL_BIN);
  setenv("KEEL_TEST_GOOD_KEY", key.c_str(), 1);
  setenv("KEEL_TEST_BAD_KEY", (key + "-wrong").c_str(), 1);
  unsetenv("KEEL_TEST_NO_KEY");
  std::string wf = box.Write(
      "keys.lua",
      "local keel = require 'keel'\n"
      "keel.provider 'good' { kind = 'openai', base_url = '" + server.url() +
          "', api_key_env = 'KEEL_TEST_GOOD_KEY' }\n"
      "keel.provider 'bad' { kind = 'openai', base_url = '" + server.url() +
          "', api_key_env = 'KEEL_TEST_BAD_KEY' }\n"
      "keel.provider 'none' { kind = 'anthropic', base_url = '" + server.url() +
          "', api_key_env = 'KEEL_TEST_NO_KEY' }\n"
      "return keel.workflow 'w' {\n"
      "  keel.agent 'ok' { provider = 'good', prompt = 'hello' },\n"
      "  keel.agent 'refused' { provider = 'bad', prompt = 'hello', optional = true },\n"
      "  keel.agent 'unset' { provider = 'none', prompt = 'hello', optional = true },\n"
      "}\n");
  Json run = RunJson(box, wf, 3);
  Json show = box.Show(run["run_id"].Str(), true);
  CHECK(NodeEntry(show["nodes"], "ok")["status"].Str() == "succeeded");
  CHECK(NodeEntry(show["nodes"], "refused")["error_kind"].Str() == "permanent");
  Json unset = NodeEntry(show["nodes"], "unset");
  CHECK(unset["error_kind"].Str() == "permanent");
  CHECK(unset["error"].Str().find("KEEL_TEST_NO_KEY") != std::string::npos);
  CHECK(box.KeelDb({"show", run["run_id"].Str(), "--events"}).out.find(key) == std::string::npos);
  CHECK(show.Dump().find(key) == std::string::npos);
  for (const std::string& file : {box.db(), box.db() + "-wal"}) {
    CHECK_MESSAGE(ReadAll(file).find(key) == std::string::npos, file);
  }
  Json log = server.Log();
  CHECK(log.Dump().find(key) == std::string::npos);
}

TEST_CASE("a hedge starts only after its delay, wins, and the loser is aborted" *
          doctest::timeout(60)) {
  // The first request hangs; the hedge sent 0.3 s later answers.
  MockLlmServer server(MOCK_LLM_BIN, {"--fail-first", "1", "--fail-mode", "hang"});
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write(
      "hedge.lua",
      Workflow(server, "  keel.agent 'a' { provider = 'llm', prompt = 'hedged', timeout = 20,\n"
                       "    hedge = { delay = 0.3, max = 2 } },\n"));
  Json run = RunJson(box, wf, 0);
  CHECK(run["outputs"]["a"].Str() == "echo: hedged");
  Json log = server.WaitForLog([](const Json& entries) {
    auto sent = LogEntries(entries, "user", "hedged");
    return sent.size() == 2 && (ClosedByClient(sent[0]) || ClosedByClient(sent[1]));
  });
  auto sent = LogEntries(log, "user", "hedged");
  REQUIRE(sent.size() == 2);
  const Json& first = sent[0]["ts"].Num() <= sent[1]["ts"].Num() ? sent[0] : sent[1];
  const Json& second = sent[0]["ts"].Num() <= sent[1]["ts"].Num() ? sent[1] : sent[0];
  // When each request reached the server depends on connection set-up and
  // load; when keel sent the hedge is in its events (below).
  CHECK(second["ts"].Num() >= first["ts"].Num());
  CHECK(ClosedByClient(first));
  CHECK(second["outcome"].Str() == "answered");
  Json show = box.Show(run["run_id"].Str(), true);
  auto hedged = Events(show, "hedge_started", "a");
  REQUIRE(hedged.size() == 1);
  auto node_started = Events(show, "node_started", "a");
  REQUIRE(node_started.size() == 1);
  CHECK(IsoSeconds(hedged[0]["ts"].Str()) - IsoSeconds(node_started[0]["ts"].Str()) >= 0.299);
  CHECK(Events(show, "hedge_aborted", "a").size() == 1);
}

TEST_CASE("a token budget fails the run cleanly; --provider points a mock at a server" *
          doctest::timeout(60)) {
  MockLlmServer server(MOCK_LLM_BIN, {});
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write(
      "budget.lua",
      "local keel = require 'keel'\n"
      "keel.provider 'fast' { kind = 'mock' }\n"
      "return keel.workflow 'w' {\n"
      "  keel.agent 'a' { provider = 'fast', prompt = 'first [[mock:tokens=400,100]]' },\n"
      "  keel.agent 'b' { provider = 'fast', after = { 'a' }, prompt = 'second [[mock:tokens=400,100]]' },\n"
      "  keel.agent 'c' { provider = 'fast', after = { 'b' }, prompt = 'third' },\n"
      "}\n");
  Json run = RunJson(box, wf, 1, {"--max-tokens", "800"});
  CHECK(run["error"].Str().find("token budget exceeded") != std::string::npos);
  Json show = box.Show(run["run_id"].Str());
  CHECK(NodeEntry(show["nodes"], "a")["status"].Str() == "succeeded");
  CHECK(NodeEntry(show["nodes"], "c")["status"].Str() == "cancelled");

  // Offline by default; with --provider the same mock speaks HTTP to the server.
  CHECK(server.Log().Size() == 0);
  Json routed = RunJson(box, wf, 0, {"--provider", "fast=" + server.url()});
  CHECK(LogEntries(server.Log(), "user", "third").size() == 1);
}

TEST_CASE("agent mistakes are reported before the run, naming file, line and node" *
          doctest::timeout(60)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write(
      "bad.lua",
      "local keel = require 'keel'\n"
      "keel.provider 'fast' { kind = 'mock' }\n"
      "return keel.workflow 'w' {\n"
      "  params = { topic = 'x' },\n"
      "  keel.fn 'outline' { run = function() return 1 end },\n"
      "  keel.agent 'a' { provider = 'fast', prompt = 'on {{params.topc}}' },\n"
      "  keel.agent 'b' { provider = 'fastt', prompt = 'x' },\n"
      "  keel.agent 'c' { provider = 'fast', prompt = '{{deps.outline}}' },\n"
      "}\n");
  ExitInfo r = box.KeelDb({"run", wf});
  INFO(r.Describe());
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("bad.lua:6: node 'a'") != std::string::npos);
  CHECK(r.err.find("did you mean 'topic'") != std::string::npos);
  CHECK(r.err.find("bad.lua:7: node 'b'") != std::string::npos);
  CHECK(r.err.find("did you mean 'fast'") != std::string::npos);
  CHECK(r.err.find("bad.lua:8: node 'c'") != std::string::npos);
}

TEST_CASE("keel.llm and keel.http wait inside a function node; failures carry their kind" *
          doctest::timeout(60)) {
  MockLlmServer server(MOCK_LLM_BIN, {});
  Sandbox box(KEEL_BIN);
  std::string base = server.url();
  std::string health = base.substr(0, base.size() - 3) + "/healthz";
  std::string wf = box.Write(
      "calls.lua",
      Workflow(server,
               "  keel.fn 'ask' { retry = { attempts = 2, base = 0.01 }, run = function(ctx)\n"
               "    local r = keel.llm { provider = 'llm', prompt = 'from lua [[mock:fault=503]][[mock:times=1]]' }\n"
               "    return { text = r.text, tokens = r.usage.prompt_tokens }\n"
               "  end },\n"
               "  keel.fn 'json' { run = function(ctx)\n"
               "    return keel.llm { provider = 'llm', prompt = 'x', output = 'json' }.json\n"
               "  end },\n"
               "  keel.fn 'denied' { optional = true, run = function(ctx)\n"
               "    local ok, err = pcall(keel.llm, { provider = 'llm', prompt = '[[mock:fault=401]]' })\n"
               "    error(err)\n"
               "  end },\n"
               "  keel.fn 'bad_schema' { run = function(ctx)\n"
               "    local ok, err = pcall(keel.llm, { provider = 'llm', prompt = 'x',\n"
               "                                      output = { type = 'text' } })\n"
               "    return tostring(err)\n"
               "  end },\n"
               "  keel.fn 'get' { run = function(ctx)\n"
               "    local r = keel.http { url = '" + health + "', timeout = 30 }\n"
               "    return r.status\n"
               "  end },\n"
               "  keel.fn 'refused' { optional = true, run = function(ctx)\n"
               "    return keel.http { url = 'http://127.0.0.1:9/nothing', timeout = 5 }\n"
               "  end },\n"));
  Json run = RunJson(box, wf, 3);
  CHECK(run["outputs"]["ask"]["text"].Str().find("echo: from lua") == 0);
  CHECK(run["outputs"]["ask"]["tokens"].Int() > 0);
  CHECK(run["outputs"]["json"]["echo"].IsString());
  CHECK(run["outputs"]["get"].Int() == 200);
  // A broken schema is refused before any request goes out.
  CHECK(run["outputs"]["bad_schema"].Str().find("'output': at type: must be a type name") !=
        std::string::npos);
  CHECK(run["outputs"]["bad_schema"].Str().find("permanent: ") == 0);
  Json show = box.Show(run["run_id"].Str(), true);
  CHECK(Events(show, "llm_call", "bad_schema").empty());
  CHECK(NodeEntry(show["nodes"], "ask")["attempts"].Int() == 2);
  CHECK(Events(show, "retry_scheduled", "ask")[0]["data"]["after"].Str() == "transient");
  CHECK(Events(show, "llm_call", "ask").size() == 2);
  CHECK(NodeEntry(show["nodes"], "denied")["error_kind"].Str() == "permanent");
  CHECK(NodeEntry(show["nodes"], "refused")["error_kind"].Str() == "transient");
}

TEST_CASE("an Anthropic provider: text, the tool loop and schema output over the wire" *
          doctest::timeout(60)) {
  MockLlmServer server(MOCK_LLM_BIN, {});
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write(
      "claude.lua",
      "local keel = require 'keel'\n"
      "keel.provider 'claude' { kind = 'anthropic', base_url = '" + server.url() +
          "', model = 'claude-x' }\n"
      "return keel.workflow 'w' {\n"
      "  keel.agent 'plain' { provider = 'claude', prompt = 'hello', system = 'be brief' },\n"
      "  keel.agent 'tools' { provider = 'claude', prompt = 'use tools',\n"
      "    tools = { look = { description = 'looks', parameters = { type = 'object',\n"
      "      properties = { q = { type = 'string' } } },\n"
      "      run = function(ctx, args) return { seen = args.q } end } } },\n"
      "  keel.agent 'typed' { provider = 'claude', prompt = 'json please',\n"
      "    output = { type = 'object', required = { 'k' } } },\n"
      "}\n");
  Json run = RunJson(box, wf, 0);
  CHECK(run["outputs"]["plain"].Str() == "echo: hello");
  CHECK(run["outputs"]["tools"].Str().find("\"seen\"") != std::string::npos);
  CHECK(run["outputs"]["typed"]["k"].IsString());
  Json log = server.Log();
  CHECK(LogEntries(log, "path", "/v1/messages").size() == 4);  // the tool loop takes two turns
}

#if defined(__SANITIZE_THREAD__)
constexpr int kSanitizerThreads = 1;
#else
constexpr int kSanitizerThreads = 0;
#endif

// Threads: of `pid`, from /proc; 0 when it is gone.
int ThreadsOf(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
  }
  return 0;
}

TEST_CASE("256 agent calls in flight use no thread beyond the workers, I/O and store" *
          doctest::timeout(120)) {
  MockLlmServer server(MOCK_LLM_BIN, {"--latency", "1500"});
  Sandbox box(KEEL_BIN);
  std::string body;
  for (int i = 0; i < 256; ++i) {
    body += "  keel.agent 'a" + std::to_string(i) + "' { provider = 'llm', prompt = 'q" +
            std::to_string(i) + "' },\n";
  }
  std::string wf = box.Write("fan.lua", Workflow(server, body));
  auto keel = box.StartDb({"run", wf, "--workers", "2"});
  int most = 0;
  while (!keel->Exited()) {
    most = std::max(most, ThreadsOf(keel->pid()));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ExitInfo done = keel->Wait(std::chrono::seconds(60));
  REQUIRE_MESSAGE(done.exit_code == 0, done.Describe());
  // The main thread is one of the 2 workers; then the I/O thread (curl and
  // every timer) and the store's writer (and ThreadSanitizer's own thread).
  CHECK(most > 0);
  CHECK(most <= 2 + 2 + kSanitizerThreads);
  // All 256 were in flight together: 256 calls of 1.5 s one after another
  // would take over 6 minutes.
  Json log = server.Log();
  CHECK(log.Size() == 256);
}

TEST_CASE("the research example runs offline, and falls back when its provider fails" *
          doctest::timeout(60)) {
  Sandbox box(KEEL_BIN);
  const std::string example = std::string(KEEL_SOURCE_DIR) + "/examples/research.lua";
  Json run = RunJson(box, example, 0);
  CHECK(run["outputs"]["publish"]["title"].IsString());
  CHECK(run["usage"]["prompt_tokens"].Int() > 0);
  Json outage = RunJson(box, example, 0, {"-p", "fault=[[mock:fault=503]]"});
  Json show = box.Show(outage["run_id"].Str());
  CHECK(NodeEntry(show["nodes"], "synthesis")["status"].Str() == "fallback");
  CHECK(NodeEntry(show["nodes"], "synthesis")["attempts"].Int() == 2);
  CHECK(outage["outputs"]["publish"].Str().find("echo: In three sentences") == 0);
}

}  // namespace keel::testing
