// What llm_call events record of each model call (the request as sent and
// the reply), through the real `keel` binary against keel-mock-llm: the
// tool loop's turns, keel.llm, failed calls, `record = false`, the size cap,
// calls answered from a checkpoint on resume, and the key kept out of the
// database file.
#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "tests/policy_test_util.h"
#include "tests/support/mock_llm_server.h"

namespace keel::testing {
namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

// The provider declarations every test here uses, against `server`:
// "llm" records with the default cap, "quiet" records nothing, "small"
// caps at 2048 bytes.
std::string Providers(const MockLlmServer& server) {
  return "local keel = require 'keel'\n"
         "keel.provider 'llm' { kind = 'openai', base_url = '" + server.url() +
         "', model = 'mock-1' }\n"
         "keel.provider 'quiet' { kind = 'openai', base_url = '" + server.url() +
         "', record = false }\n"
         "keel.provider 'small' { kind = 'openai', base_url = '" + server.url() +
         "', record = 2048 }\n";
}

}  // namespace

TEST_CASE("llm_call events record each turn's messages and reply, tool calls included" *
          doctest::timeout(60)) {
  MockLlmServer server(MOCK_LLM_BIN, {});
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write(
      "record.lua",
      Providers(server) +
          "return keel.workflow 'w' {\n"
          "  keel.agent 'agent' { provider = 'llm', system = 'you look things up',\n"
          "    prompt = 'find breakers [[mock:call=lookup {\"q\": \"breakers\"}]]',\n"
          "    tools = { lookup = { description = 'looks things up',\n"
          "      parameters = { type = 'object', properties = { q = { type = 'string' } } },\n"
          "      run = function(ctx, args) return { found = args.q } end } } },\n"
          "  keel.fn 'fn' { run = function(ctx)\n"
          "    return keel.llm { provider = 'llm', system = 'terse', prompt = 'from lua' }.text\n"
          "  end },\n"
          "  keel.agent 'silent' { provider = 'quiet', prompt = 'not recorded' },\n"
          "  keel.agent 'failing' { provider = 'llm', optional = true,\n"
          "    prompt = 'doomed [[mock:fault=400]]' },\n"
          "}\n");
  Json run = RunJson(box, wf, 3);  // 3: degraded, the optional node failed
  Json show = box.Show(run["run_id"].Str(), true);

  auto calls = Events(show, "llm_call", "agent");
  REQUIRE(calls.size() == 2);
  // Turn 1: the prompt goes out; the model asks for the tool.
  Json first = calls[0]["data"];
  INFO(first.Dump());
  CHECK(first["request"]["system"].Str() == "you look things up");
  REQUIRE(first["request"]["messages"].Size() == 1);
  CHECK(first["request"]["messages"][0]["role"].Str() == "user");
  CHECK(first["request"]["messages"][0]["content"].Str().find("find breakers") == 0);
  CHECK(first["request"]["tools"].Dump() == R"(["lookup"])");
  Json asked = first["reply"]["tool_calls"][0];
  CHECK(asked["name"].Str() == "lookup");
  CHECK(Json::Parse(asked["arguments"].Str())["q"].Str() == "breakers");
  CHECK_FALSE(asked["id"].Str().empty());
  CHECK(first["prompt_tokens"].Int() > 0);
  // Turn 2: the conversation so far, the tool's result included; the answer.
  Json second = calls[1]["data"];
  INFO(second.Dump());
  Json messages = second["request"]["messages"];
  REQUIRE(messages.Size() == 3);
  CHECK(messages[1]["role"].Str() == "assistant");
  CHECK(messages[1]["tool_calls"][0]["id"].Str() == asked["id"].Str());
  CHECK(messages[1]["tool_calls"][0]["function"]["name"].Str() == "lookup");
  CHECK(messages[2]["role"].Str() == "tool");
  CHECK(messages[2]["tool_call_id"].Str() == asked["id"].Str());
  CHECK(messages[2]["content"].Str().find("breakers") != std::string::npos);
  CHECK(second["reply"]["content"].Str().find("tool results:") == 0);
  CHECK(second["reply"]["tool_calls"].Size() == 0);
  CHECK(second["request"]["truncated"].IsNull());

  auto fn = Events(show, "llm_call", "fn");
  REQUIRE(fn.size() == 1);
  CHECK(fn[0]["data"]["request"]["system"].Str() == "terse");
  CHECK(fn[0]["data"]["request"]["messages"][0]["content"].Str() == "from lua");
  CHECK(fn[0]["data"]["reply"]["content"].Str() == "echo: from lua");

  // record = false: tokens, cost and latency stay, the texts do not.
  auto silent = Events(show, "llm_call", "silent");
  REQUIRE(silent.size() == 1);
  CHECK(silent[0]["data"]["request"].IsNull());
  CHECK(silent[0]["data"]["reply"].IsNull());
  CHECK(silent[0]["data"]["prompt_tokens"].Int() > 0);
  CHECK(silent[0]["data"]["seconds"].IsNumber());

  // A failed call: what was sent, no reply, the error in `message`.
  auto failing = Events(show, "llm_call", "failing");
  REQUIRE(failing.size() == 1);
  CHECK(failing[0]["data"]["request"]["messages"][0]["content"].Str().find("doomed") == 0);
  CHECK(failing[0]["data"]["reply"].IsNull());
  CHECK_FALSE(failing[0]["data"]["message"].Str().empty());
}

TEST_CASE("the hedge that wins records its request and reply" * doctest::timeout(60)) {
  // The first request hangs; the hedge sent 0.2 s later answers.
  MockLlmServer server(MOCK_LLM_BIN, {"--fail-first", "1", "--fail-mode", "hang"});
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write(
      "hedge.lua", Providers(server) +
                       "return keel.workflow 'w' {\n"
                       "  keel.agent 'a' { provider = 'llm', prompt = 'hedged', timeout = 20,\n"
                       "    hedge = { delay = 0.2, max = 2 } },\n"
                       "}\n");
  Json run = RunJson(box, wf, 0);
  Json show = box.Show(run["run_id"].Str(), true);
  auto calls = Events(show, "llm_call", "a");
  REQUIRE(calls.size() == 1);  // the aborted loser is not a call
  Json won = calls[0]["data"];
  INFO(won.Dump());
  CHECK(won["hedge"].Int() == 1);
  CHECK(won["request"]["messages"][0]["content"].Str() == "hedged");
  CHECK(won["reply"]["content"].Str() == "echo: hedged");
}

TEST_CASE("a long prompt is capped: earlier messages cut, the last user message whole" *
          doctest::timeout(60)) {
  MockLlmServer server(MOCK_LLM_BIN, {});
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write(
      "long.lua",
      Providers(server) +
          "return keel.workflow 'w' {\n"
          "  keel.agent 'long' { provider = 'small', messages = {\n"
          "    { role = 'user', content = string.rep('background ', 2000) },\n"
          "    { role = 'assistant', content = 'noted' },\n"
          "    { role = 'user', content = 'the question' } } },\n"
          "  keel.agent 'echo' { provider = 'small', prompt = string.rep('e', 5000) },\n"
          "}\n");
  Json run = RunJson(box, wf, 0);
  Json show = box.Show(run["run_id"].Str(), true);
  auto calls = Events(show, "llm_call", "long");
  REQUIRE(calls.size() == 1);
  Json request = calls[0]["data"]["request"];
  INFO(request.Dump());
  CHECK(request.Dump().size() <= 2048);
  CHECK(request["truncated"].Bool());
  CHECK(request["original_bytes"].Int() > 22000);
  CHECK(request["messages"][2]["content"].Str() == "the question");
  CHECK(request["messages"][1]["content"].Str() == "noted");
  std::string cut = request["messages"][0]["content"].Str();
  CHECK(cut.find("background background") == 0);
  CHECK(cut.find("bytes cut]") != std::string::npos);
  CHECK(cut.size() < 2048);
  // The reply (the prompt echoed) is capped the same way.
  auto echo = Events(show, "llm_call", "echo");
  REQUIRE(echo.size() == 1);
  Json reply = echo[0]["data"]["reply"];
  CHECK(reply.Dump().size() <= 2048);
  CHECK(reply["truncated"].Bool());
  CHECK(reply["content"].Str().find("echo: eee") == 0);
  // The node's output is not cut: only the record is.
  CHECK(run["outputs"]["echo"].Str().size() == 5000 + 6);
}

TEST_CASE("a call answered from its checkpoint on resume is not recorded again" *
          doctest::timeout(60)) {
  MockLlmServer server(MOCK_LLM_BIN, {});
  Sandbox box(KEEL_BIN);
  const std::string flag = box.Path("may-finish");
  std::string wf = box.Write(
      "resume.lua",
      Providers(server) +
          "return keel.workflow 'w' {\n"
          "  params = { flag = '" + flag + "' },\n"
          "  keel.fn 'f' { run = function(ctx)\n"
          "    local r = keel.llm { provider = 'llm', prompt = 'ask once' }\n"
          "    if not io.open(ctx.params.flag) then error('not yet') end\n"
          "    return r.text\n"
          "  end },\n"
          "}\n");
  ExitInfo failed = box.KeelDb({"run", wf, "--json"}, kPrompt);
  INFO(failed.Describe());
  REQUIRE(failed.exit_code == 1);
  std::string run_id = Json::Parse(failed.out)["run_id"].Str();
  std::ofstream(flag) << "go";
  ExitInfo resumed = box.KeelDb({"resume", run_id, "--json"}, kPrompt);
  INFO(resumed.Describe());
  REQUIRE(resumed.exit_code == 0);
  CHECK(Json::Parse(resumed.out)["outputs"]["f"].Str() == "echo: ask once");
  CHECK(LogEntries(server.Log(), "user", "ask once").size() == 1);
  Json show = box.Show(run_id, true);
  auto calls = Events(show, "llm_call", "f");
  REQUIRE(calls.size() == 1);
  CHECK(calls[0]["data"]["request"]["messages"][0]["content"].Str() == "ask once");
}

TEST_CASE("with recording on, the API key is nowhere in the database file" *
          doctest::timeout(60)) {
  const std::string key = "sk-keel-record-4b9e2d7a1c";
  MockLlmServer server(MOCK_LLM_BIN, {"--require-key", key});
  Sandbox box(KEEL_BIN);
  setenv("KEEL_TEST_RECORD_KEY", key.c_str(), 1);
  std::string wf = box.Write(
      "keys.lua",
      "local keel = require 'keel'\n"
      "keel.provider 'llm' { kind = 'openai', base_url = '" + server.url() +
          "', api_key_env = 'KEEL_TEST_RECORD_KEY', headers = { ['X-Team'] = 'blue' } }\n"
          "keel.provider 'anth' { kind = 'anthropic', base_url = '" + server.url() +
          "', api_key_env = 'KEEL_TEST_RECORD_KEY' }\n"
          "return keel.workflow 'w' {\n"
          "  keel.agent 'agent' { provider = 'llm', prompt = 'look [[mock:call=t {}]]',\n"
          "    tools = { t = { run = function() return 'ok' end } } },\n"
          "  keel.agent 'other' { provider = 'anth', prompt = 'hello' },\n"
          "  keel.fn 'fn' { run = function()\n"
          "    return keel.llm { provider = 'llm', prompt = 'from lua' }.text end },\n"
          "  keel.agent 'denied' { provider = 'llm', optional = true,\n"
          "    prompt = 'no [[mock:fault=401]]' },\n"
          "}\n");
  Json run = RunJson(box, wf, 3);
  Json show = box.Show(run["run_id"].Str(), true);
  // The calls were made with the key and recorded.
  CHECK(NodeEntry(show["nodes"], "agent")["status"].Str() == "succeeded");
  CHECK(NodeEntry(show["nodes"], "other")["status"].Str() == "succeeded");
  CHECK(Events(show, "llm_call", "agent")[1]["data"]["request"]["messages"].Size() == 3);
  CHECK_FALSE(Events(show, "llm_call", "other")[0]["data"]["reply"]["content"].Str().empty());
  CHECK(show.Dump().find(key) == std::string::npos);
  CHECK(show.Dump().find("Authorization") == std::string::npos);
  CHECK(show.Dump().find("X-Team") == std::string::npos);
  for (const std::string& file : {box.db(), box.db() + "-wal", box.db() + "-shm"}) {
    CHECK_MESSAGE(ReadAll(file).find(key) == std::string::npos, file);
  }
}

TEST_CASE("a bad `record` option names the file, line and option" * doctest::timeout(60)) {
  Sandbox box(KEEL_BIN);
  for (const char* bad : {"'yes'", "10", "2048.5", "1e12"}) {
    std::string wf = box.Write("bad.lua",
                               std::string("local keel = require 'keel'\n"
                                           "keel.provider 'p' { kind = 'mock', record = ") +
                                   bad +
                                   " }\n"
                                   "return keel.workflow 'w' {\n"
                                   "  keel.agent 'a' { provider = 'p', prompt = 'x' } }\n");
    ExitInfo r = box.KeelDb({"run", wf});
    INFO(bad << ": " << r.Describe());
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("bad.lua:2: provider 'p': option 'record' must be true, false or a number "
                     "of bytes from 1024 to 16777216") != std::string::npos);
  }
}

}  // namespace keel::testing
