// kill -9 in the middle of an agent's tool-calling loop, then resume: the
// mock server's request log proves that no finished model call is made again.
#include <doctest/doctest.h>

#include <fstream>
#include <thread>

#include "tests/policy_test_util.h"
#include "tests/support/mock_llm_server.h"

namespace keel::testing {

TEST_CASE("a resumed agent continues its conversation without paying twice" *
          doctest::timeout(120)) {
  MockLlmServer server(MOCK_LLM_BIN, {});
  Sandbox box(KEEL_BIN);
  const std::string flag = box.Path("tools-may-finish");
  std::string wf = box.Write(
      "agents.lua",
      "local keel = require 'keel'\n"
      "keel.provider 'llm' { kind = 'openai', base_url = '" + server.url() + "' }\n"
      "return keel.workflow 'w' {\n"
      "  params = { flag = '" + flag + "' },\n"
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
  auto keel = box.StartDb({"run", wf});
  // Wait until the second agent's first model turn is checkpointed.
  std::string run_id;
  auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  bool checkpointed = false;
  while (!checkpointed && std::chrono::steady_clock::now() < give_up && !keel->Exited()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    run_id = RunIdFromStderr(keel->Stderr());
    if (run_id.empty()) continue;
    ExitInfo show = box.KeelDb({"show", run_id, "--json", "--events"});
    if (show.exit_code != 0) continue;
    checkpointed = !Events(Json::Parse(show.out), "checkpoint", "second").empty();
  }
  REQUIRE_MESSAGE(checkpointed, keel->Stderr());
  keel->Kill();

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

}  // namespace keel::testing
