// kill -9 in the middle of an agent's tool-calling loop, or of a function's
// keel.llm calls, then resume; and a retried function: the mock server's
// request log proves that no finished model call is made again.
#include <doctest/doctest.h>

#include <fstream>
#include <thread>

#include "tests/policy_test_util.h"
#include "tests/support/mock_llm_server.h"

namespace keel::testing {
namespace {

// True when `show` has a checkpoint of `node`, or, with a `fallback_node`,
// one of that node of a fallback workflow run for `node`.
bool HasCheckpoint(const Json& show, const std::string& node, const std::string& fallback_node) {
  if (fallback_node.empty()) return !Events(show, "checkpoint", node).empty();
  for (const Json& e : Events(show, "fallback_event", node)) {
    if (e["data"]["event"].Str() == "checkpoint" && e["data"]["node"].Str() == fallback_node) {
      return true;
    }
  }
  return false;
}

// Starts `keel run wf`, waits until `node` (or its fallback's `fallback_node`)
// has a checkpoint event, kills the process (SIGKILL) and returns the run's id.
std::string KillAfterCheckpoint(const Sandbox& box, const std::string& wf, const std::string& node,
                                const std::string& fallback_node = "") {
  auto keel = box.StartDb({"run", wf});
  std::string run_id;
  auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  bool checkpointed = false;
  while (!checkpointed && std::chrono::steady_clock::now() < give_up && !keel->Exited()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    run_id = RunIdFromStderr(keel->Stderr());
    if (run_id.empty()) continue;
    ExitInfo show = box.KeelDb({"show", run_id, "--json", "--events"});
    if (show.exit_code != 0) continue;
    checkpointed = HasCheckpoint(Json::Parse(show.out), node, fallback_node);
  }
  REQUIRE_MESSAGE(checkpointed, keel->Stderr());
  keel->Kill();
  return run_id;
}

}  // namespace

TEST_CASE("a resumed agent continues its conversation without paying twice" *
          doctest::timeout(120)) {
  MockLlmServer server(MOCK_LLM_BIN, {});
  Sandbox box(KEEL_BIN);
  const std::string flag = box.Path("tools-may-finish");
  std::string wf = box.Write(
      "agents.lua",
      "local keel = require 'keel'\n"
      "keel.provider 'llm' { kind = 'openai', base_url = '" +
          server.url() +
          "' }\n"
          "return keel.workflow 'w' {\n"
          "  params = { flag = '" +
          flag +
          "' },\n"
          "  keel.agent 'first' { provider = 'llm', prompt = 'first agent' },\n"
          "  keel.agent 'second' { provider = 'llm', after = { 'first' },\n"
          "    prompt = 'second agent [[mock:call=lookup {\"q\": \"breakers\"}]]',\n"
          "    tools = { lookup = { description = 'looks things up',\n"
          "      parameters = { type = 'object', properties = { q = { type = 'string' } } },\n"
          "      run = function(ctx, args)\n"
          "        -- Stuck until the test has killed the first process.\n"
          "        while not io.open(ctx.params.flag) do keel.sleep(0.05) end\n"
          "        return { found = args.q }\n"
          "      end } } },\n"
          "}\n");
  // Kill it once the second agent's first model turn is checkpointed.
  std::string run_id = KillAfterCheckpoint(box, wf, "second");

  std::ofstream(flag) << "go";
  Json resumed = Json::Parse(box.KeelDb({"resume", run_id, "--json"}).out);
  CHECK(resumed["status"].Str() == "succeeded");
  CHECK(resumed["outputs"]["second"].Str().find("breakers") != std::string::npos);

  Json log = server.Log();
  // The first agent finished before the kill: asked once. The second one's
  // first turn (which asked for the tool) is not asked again; only the turn
  // with the tool's result is new.
  CHECK(LogEntries(log, "user", "first agent").size() == 1);
  CHECK(LogEntries(log, "user", "second agent").size() == 2);
  Json show = box.Show(run_id, true);
  CHECK(Events(show, "tool_call", "second").size() == 1);
}

TEST_CASE("keel.llm calls a function finished are answered from checkpoints on retry" *
          doctest::timeout(60)) {
  MockLlmServer server(MOCK_LLM_BIN, {});
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write(
      "calls.lua",
      "local keel = require 'keel'\n"
      "keel.provider 'llm' { kind = 'openai', base_url = '" +
          server.url() +
          "' }\n"
          "return keel.workflow 'w' {\n"
          "  keel.fn 'f' { retry = { attempts = 3, base = 0.01, jitter = 'none' },\n"
          "    run = function(ctx)\n"
          "      local a = keel.llm { provider = 'llm', prompt = 'one' }\n"
          "      local b = keel.llm { provider = 'llm', prompt = 'two', temperature = 0.5 }\n"
          "      -- A different request in the same place is asked, not replayed.\n"
          "      local c = keel.llm { provider = 'llm', prompt = 'three ' .. ctx.attempt }\n"
          "      if ctx.attempt < 3 then error('flaky after the calls') end\n"
          "      return a.text .. ' | ' .. b.text .. ' | ' .. c.text\n"
          "    end },\n"
          "}\n");
  Json run = RunJson(box, wf, 0);
  CHECK(run["outputs"]["f"].Str() == "echo: one | echo: two | echo: three 3");
  Json log = server.Log();
  CHECK(LogEntries(log, "user", "one").size() == 1);
  CHECK(LogEntries(log, "user", "two").size() == 1);
  CHECK(LogEntries(log, "user", "three").size() == 3);
  // Spending counts the calls made, not the ones replayed.
  CHECK(run["usage"]["calls"].Int() == 5);
}

TEST_CASE("a resumed function does not repeat the keel.llm calls it finished" *
          doctest::timeout(120)) {
  MockLlmServer server(MOCK_LLM_BIN, {});
  Sandbox box(KEEL_BIN);
  const std::string flag = box.Path("answer-at-once");
  std::string wf =
      box.Write("calls.lua",
                "local keel = require 'keel'\n"
                "keel.provider 'llm' { kind = 'openai', base_url = '" +
                    server.url() +
                    "' }\n"
                    "return keel.workflow 'w' {\n"
                    "  params = { flag = '" +
                    flag +
                    "' },\n"
                    "  keel.fn 'f' { run = function(ctx)\n"
                    "    local a = keel.llm { provider = 'llm', prompt = 'first call' }\n"
                    "    -- Hangs until the test has killed the first process.\n"
                    "    local slow = io.open(ctx.params.flag) == nil\n"
                    "    local b = keel.llm { provider = 'llm',\n"
                    "                         prompt = 'second call' .. (slow and ' "
                    "[[mock:fault=hang]]' or '') }\n"
                    "    return a.text .. ' / ' .. b.text\n"
                    "  end },\n"
                    "}\n");
  // Kill it once the first call is checkpointed (the second then hangs).
  std::string run_id = KillAfterCheckpoint(box, wf, "f");

  std::ofstream(flag) << "go";
  Json resumed = Json::Parse(box.KeelDb({"resume", run_id, "--json"}).out);
  CHECK(resumed["status"].Str() == "succeeded");
  CHECK(resumed["outputs"]["f"].Str() == "echo: first call / echo: second call");
  Json log = server.Log();
  CHECK(LogEntries(log, "user", "first call").size() == 1);
  CHECK(LogEntries(log, "user", "second call").size() == 2);
}

TEST_CASE("a fallback workflow's agent resumed after kill -9 does not pay twice" *
          doctest::timeout(120)) {
  MockLlmServer server(MOCK_LLM_BIN, {});
  Sandbox box(KEEL_BIN);
  const std::string flag = box.Path("tools-may-finish");
  std::string wf = box.Write(
      "fallback.lua",
      "local keel = require 'keel'\n"
      "keel.provider 'llm' { kind = 'openai', base_url = '" +
          server.url() +
          "' }\n"
          "keel.workflow 'rescue' {\n"
          "  keel.agent 'helper' { provider = 'llm',\n"
          "    prompt = 'rescue agent [[mock:call=lookup {\"q\": \"plan b\"}]]',\n"
          "    tools = { lookup = { description = 'looks things up',\n"
          "      parameters = { type = 'object', properties = { q = { type = 'string' } } },\n"
          "      run = function(ctx, args)\n"
          "        while not io.open('" +
          flag +
          "') do keel.sleep(0.05) end\n"
          "        return { found = args.q }\n"
          "      end } } },\n"
          "}\n"
          "return keel.workflow 'w' {\n"
          "  keel.agent 'main' { provider = 'llm', prompt = 'main [[mock:fault=401]]',\n"
          "    fallback = 'rescue' },\n"
          "}\n");
  std::string run_id = KillAfterCheckpoint(box, wf, "main", "helper");

  std::ofstream(flag) << "go";
  Json resumed = Json::Parse(box.KeelDb({"resume", run_id, "--json"}).out);
  CHECK(resumed["status"].Str() == "succeeded");
  CHECK(resumed["outputs"]["main"].Str().find("plan b") != std::string::npos);
  Json log = server.Log();
  // The rescue agent's first turn (which asked for the tool) is not asked
  // again; only the turn with the tool's result is new.
  CHECK(LogEntries(log, "user", "rescue agent").size() == 2);
}

}  // namespace keel::testing
