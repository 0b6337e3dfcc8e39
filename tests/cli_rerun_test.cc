// A run's recorded configuration and script versions, `keel resume --from`
// and `keel fork`, through the real `keel` binary: params, --provider and
// budgets reused by resume; a changed module recorded as a new version;
// re-running a finished run from a node; forks that reuse what is upstream;
// and the interrupt hint's command working as printed.

#include <doctest/doctest.h>
#include <signal.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "tests/support/files.h"
#include "tests/support/json.h"
#include "tests/support/keel_cli.h"
#include "tests/support/mock_llm_server.h"
#include "tests/support/sandbox.h"

namespace keel::testing {
namespace {

constexpr int kTimeoutS = 120;
constexpr auto kWait = std::chrono::seconds(30);

// log(name) appends a line to the sandbox's log; wait_for(path) waits
// without blocking a worker until the file exists.
std::string Prelude(const Sandbox& box) {
  return R"lua(local keel = require "keel"
local LOG, GO = ")lua" +
         box.Path("log") + R"lua(", ")lua" + box.Path("go") + R"lua("
local function log(name)
  local f = assert(io.open(LOG, "a"))
  f:write(name, "\n")
  f:close()
end
local function wait_for(path)
  for i = 1, 6000 do
    local f = io.open(path, "r")
    if f then f:close() return end
    keel.sleep(0.01)
  end
  error("timed out waiting for " .. path)
end
local function exists(path)
  local f = io.open(path, "r")
  if f then f:close() end
  return f ~= nil
end
)lua";
}

std::map<std::string, int> LogCounts(const Sandbox& box) {
  return CountLines(ReadFile(box.Path("log")).value_or(""));
}

void ClearLog(const Sandbox& box) { box.Write("log", ""); }

// a -> b -> d, a -> c; e alone. b's output carries the module's tag and
// the topic param.
std::string Diamond(const Sandbox& box) {
  return box.Write("flow.lua", Prelude(box) + R"lua(
local util = require "util"
return keel.workflow "w" {
  params = { topic = "x" },
  keel.fn "a" { run = function(ctx) log("a") return ctx.params.topic end },
  keel.fn "b" { after = { "a" }, run = function(ctx) log("b") return ctx.deps.a .. "/" .. util.tag end },
  keel.fn "c" { after = { "a" }, run = function(ctx) log("c") return "c" end },
  keel.fn "d" { after = { "b" }, run = function(ctx) log("d") return ctx.deps.b .. "!" end },
  keel.fn "e" { run = function(ctx) log("e") return "e" end },
}
)lua");
}

Json RunOk(const Sandbox& box, const std::vector<std::string>& args, int expected = 0) {
  ExitInfo r = box.KeelDb(args);
  INFO(r.Describe());
  REQUIRE(r.exit_code == expected);
  return Json::Parse(r.out);
}

Json Output(const Json& report, const std::string& node) { return report["outputs"][node]; }

TEST_CASE("resume --from re-runs exactly the node and what is downstream, in a succeeded run" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  box.Write("util.lua", "return { tag = 'v1' }\n");
  std::string wf = Diamond(box);
  Json run = RunOk(box, {"run", wf, "--json", "-p", "topic=hi"});
  const std::string id = run["run_id"].Str();
  CHECK(Output(run, "d").Str() == "hi/v1!");
  CHECK(LogCounts(box) ==
        std::map<std::string, int>{{"a", 1}, {"b", 1}, {"c", 1}, {"d", 1}, {"e", 1}});

  ClearLog(box);
  Json again = RunOk(box, {"resume", id, "--from", "b", "--json"});
  CHECK(again["run_id"].Str() == id);
  CHECK(again["status"].Str() == "succeeded");
  CHECK(LogCounts(box) == std::map<std::string, int>{{"b", 1}, {"d", 1}});
  CHECK(Output(again, "d").Str() == "hi/v1!");

  // The earlier attempts stay in the history; the records were replaced.
  Json show = box.Show(id, /*events=*/true);
  CHECK(NodeEntry(show["nodes"], "b")["attempts"].Int() == 2);
  CHECK(NodeEntry(show["nodes"], "a")["attempts"].Int() == 1);
  int b_succeeded = 0, reruns = 0;
  for (size_t i = 0; i < show["events"].Size(); ++i) {
    Json e = show["events"][i];
    b_succeeded += e["kind"].Str() == "node_succeeded" && e["node"].Str() == "b";
    reruns += e["kind"].Str() == "rerun";
  }
  CHECK(b_succeeded == 2);
  CHECK(reruns == 1);

  // A plain resume of the succeeded run still has nothing to do.
  ClearLog(box);
  ExitInfo plain = box.KeelDb({"resume", id});
  CHECK(plain.exit_code == 0);
  CHECK(plain.err.find("already succeeded") != std::string::npos);
  CHECK(LogCounts(box).empty());
}

TEST_CASE("resume --from a node that does not exist is an error with did-you-mean" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  box.Write("util.lua", "return { tag = 'v1' }\n");
  std::string wf = Diamond(box);
  const std::string id = RunOk(box, {"run", wf, "--json"})["run_id"].Str();
  ClearLog(box);
  for (const char* command : {"resume", "fork"}) {
    ExitInfo r = box.KeelDb({command, id, "--from", "bb"});
    INFO(r.Describe());
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("no node 'bb' in workflow 'w' (did you mean 'b'?)") != std::string::npos);
  }
  CHECK(LogCounts(box).empty());
  CHECK(box.Runs().Size() == 1);  // the fork created nothing
  Json show = box.Show(id);
  CHECK(show["status"].Str() == "succeeded");
  CHECK(NodeEntry(show["nodes"], "b")["attempts"].Int() == 1);

  ExitInfo params = box.KeelDb({"resume", id, "-p", "topic=y"});
  CHECK(params.exit_code == 2);
  CHECK(params.err.find("keel fork " + id + " -p") != std::string::npos);
}

TEST_CASE("a changed module is a changed script: noted, and recorded as a new version" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  box.Write("util.lua", "return { tag = 'v1' }\n");
  std::string wf = Diamond(box);
  const std::string id = RunOk(box, {"run", wf, "--json"})["run_id"].Str();
  box.Write("util.lua", "return { tag = 'v2' }\n");

  ExitInfo r = box.KeelDb({"resume", id, "--from", "b", "--json"});
  INFO(r.Describe());
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.find("note: module util (" + box.Path("util.lua") +
                   ") changed since the run started; resuming with the script as it is now") !=
        std::string::npos);
  CHECK(r.err.find("flow.lua changed") == std::string::npos);
  CHECK(Output(Json::Parse(r.out), "d").Str() == "x/v2!");

  Json show = box.Show(id, /*events=*/true);
  CHECK(show["script_version"].Int() == 2);
  REQUIRE(show["versions"].Size() == 2);
  Json v1 = show["versions"][0], v2 = show["versions"][1];
  CHECK(v1["version"].Int() == 1);
  REQUIRE(v1["modules"].Size() == 1);
  CHECK(v1["modules"][0]["name"].Str() == "util");
  CHECK(v1["modules"][0]["path"].Str() == box.Path("util.lua"));
  CHECK(v1["modules"][0]["sha256"].Str() != v2["modules"][0]["sha256"].Str());
  CHECK(v1["script_sha256"].Str() == v2["script_sha256"].Str());
  // Which nodes ran with which version.
  CHECK(v1["nodes"].Dump() == R"(["a","c","e"])");
  CHECK(v2["nodes"].Dump() == R"(["b","d"])");
  CHECK(NodeEntry(show["nodes"], "a")["version"].Int() == 1);
  CHECK(NodeEntry(show["nodes"], "d")["version"].Int() == 2);
  // The resume's event says so too.
  bool noted = false;
  for (size_t i = 0; i < show["events"].Size(); ++i) {
    Json e = show["events"][i];
    if (e["kind"].Str() != "run_resumed") continue;
    noted = e["data"]["script_changed"].Bool() && e["data"]["script_version"].Int() == 2 &&
            e["data"]["from"].Str() == "b";
  }
  CHECK(noted);

  ExitInfo text = box.KeelDb({"show", id});
  CHECK(text.out.find("script versions") != std::string::npos);
  CHECK(text.out.find("nodes: b, d") != std::string::npos);

  // An unchanged resume adds no version.
  RunOk(box, {"resume", id, "--from", "e", "--json"});
  CHECK(box.Show(id)["versions"].Size() == 2);
}

TEST_CASE("graph and show draw a run from its recorded script and modules" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  box.Write("util.lua", "return { tag = 'v1', name = 'b' }\n");
  std::string wf = box.Write("flow.lua", Prelude(box) + R"lua(
local util = require "util"
return keel.workflow "w" {
  keel.fn "a" { run = function() return 1 end },
  keel.fn(util.name) { after = { "a" }, run = function() return 2 end },
}
)lua");
  const std::string id = RunOk(box, {"run", wf, "--json"})["run_id"].Str();
  // The script changes, and the module it needs is gone.
  box.Write("flow.lua", "return nil -- rewritten\n");
  std::filesystem::remove(box.Path("util.lua"));
  ExitInfo graph = box.KeelDb({"graph", id, "--format", "mermaid"});
  INFO(graph.Describe());
  CHECK(graph.exit_code == 0);
  CHECK(graph.out.find("n1[\"b<br/>succeeded\"]") != std::string::npos);
  CHECK(graph.out.find("n0 --> n1") != std::string::npos);
  Json show = box.Show(id);
  CHECK(show["nodes"][1]["node"].Str() == "b");
}

TEST_CASE("fork changes a param and reuses the outputs upstream of --from" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  box.Write("util.lua", "return { tag = 'v1' }\n");
  std::string wf = Diamond(box);
  const std::string id =
      RunOk(box, {"run", wf, "--json", "-p", "topic=hi", "--max-inflight", "3"})["run_id"].Str();

  ClearLog(box);
  ExitInfo r = box.KeelDb({"fork", id, "--from", "a", "-p", "topic=bye", "--json"});
  INFO(r.Describe());
  REQUIRE(r.exit_code == 0);
  Json fork = Json::Parse(r.out);
  const std::string fork_id = fork["run_id"].Str();
  CHECK(fork_id != id);
  // a and everything after it ran with the new param; e was reused.
  CHECK(LogCounts(box) == std::map<std::string, int>{{"a", 1}, {"b", 1}, {"c", 1}, {"d", 1}});
  CHECK(Output(fork, "d").Str() == "bye/v1!");

  ClearLog(box);
  Json partial = RunOk(box, {"fork", id, "--from", "b", "-p", "topic=ciao", "--json"});
  CHECK(LogCounts(box) == std::map<std::string, int>{{"b", 1}, {"d", 1}});
  CHECK(Output(partial, "d").Str() == "hi/v1!");  // a's recorded output was reused

  Json show = box.Show(partial["run_id"].Str());
  CHECK(show["forked_from"].Str() == id);
  CHECK(show["forked_from_node"].Str() == "b");
  CHECK(show["params"]["topic"].Str() == "ciao");
  CHECK(show["config"]["max_inflight"].Int() == 3);  // the recorded configuration
  CHECK(NodeEntry(show["nodes"], "a")["version"].Int() == 0);
  CHECK(NodeEntry(show["nodes"], "b")["version"].Int() == 1);
  ExitInfo text = box.KeelDb({"show", partial["run_id"].Str()});
  CHECK(text.out.find("forked    from " + id + " at node b") != std::string::npos);
  CHECK(text.out.find("reused from " + id + ": a, c, e") != std::string::npos);
  // The original is untouched.
  CHECK(box.Show(id)["forked_from"].IsNull());
}

TEST_CASE("fork without --from runs every node with the recorded params" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  box.Write("util.lua", "return { tag = 'v1' }\n");
  std::string wf = Diamond(box);
  const std::string id = RunOk(box, {"run", wf, "--json", "-p", "topic=hi"})["run_id"].Str();
  ClearLog(box);
  ExitInfo r = box.KeelDb({"fork", id});
  INFO(r.Describe());
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.starts_with("run "));
  CHECK(r.out.find(id) == std::string::npos);
  CHECK(LogCounts(box) ==
        std::map<std::string, int>{{"a", 1}, {"b", 1}, {"c", 1}, {"d", 1}, {"e", 1}});
  Json runs = box.Runs();
  REQUIRE(runs.Size() == 2);
  Json show = box.Show(runs[0]["run_id"].Str());
  CHECK(show["forked_from"].Str() == id);
  CHECK(show["forked_from_node"].IsNull());
  CHECK(show["params"]["topic"].Str() == "hi");
  ExitInfo text = box.KeelDb({"show", runs[0]["run_id"].Str()});
  CHECK(text.out.find("forked    from " + id + ", every node run again") != std::string::npos);
}

TEST_CASE("resume reuses the recorded params, --provider and budget" *
          doctest::timeout(kTimeoutS)) {
  MockLlmServer server(MOCK_LLM_BIN, {});
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("llm.lua", Prelude(box) + R"lua(
keel.provider "fast" { kind = "mock" }
return keel.workflow "w" {
  params = { topic = "x" },
  keel.fn "gate" { run = function(ctx)
    if not exists(GO) then error("closed") end
    return ctx.params.topic
  end },
  keel.agent "a" { provider = "fast", after = { "gate" }, prompt = "about {{deps.gate}} [[mock:tokens=400,100]]" },
  keel.agent "b" { provider = "fast", after = { "a" }, prompt = "more [[mock:tokens=400,100]]" },
}
)lua");
  ExitInfo first = box.KeelDb({"run", wf, "--json", "-p", "topic=herons", "--provider",
                               "fast=" + server.url(), "--max-tokens", "800"});
  INFO(first.Describe());
  REQUIRE(first.exit_code == 1);
  const std::string id = Json::Parse(first.out)["run_id"].Str();
  Json config = box.Show(id)["config"];
  CHECK(config["providers"]["fast"].Str() == server.url());
  CHECK(config["max_tokens"].Int() == 800);

  box.Write("go", "");
  ExitInfo resumed = box.KeelDb({"resume", id, "--json"});
  INFO(resumed.Describe());
  // The recorded budget stops it after a and b spent 1000 tokens.
  CHECK(resumed.exit_code == 1);
  CHECK(Json::Parse(resumed.out)["error"].Str().find("token budget exceeded") != std::string::npos);
  // The recorded --provider sent the calls to the server, with the recorded param.
  CHECK(LogEntries(server.Log(), "user", "about herons").size() == 1);

  // A limit given on the command line replaces the recorded one, and is
  // recorded in turn.
  ExitInfo raised = box.KeelDb({"resume", id, "--max-tokens", "5000", "--json"});
  INFO(raised.Describe());
  CHECK(raised.exit_code == 0);
  CHECK(box.Show(id)["config"]["max_tokens"].Int() == 5000);
  CHECK(box.Show(id)["config"]["providers"]["fast"].Str() == server.url());
}

TEST_CASE("the interrupt hint names --db, and its command works as printed" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("blocked.lua", Prelude(box) + R"lua(
return keel.workflow "blocked" {
  keel.fn "first" { run = function() log("first") return 1 end },
  keel.fn "wait" { after = { "first" }, run = function() log("wait") wait_for(GO) return "done" end },
}
)lua");
  std::unique_ptr<Subprocess> run = box.StartDb({"run", wf});
  REQUIRE(run->WaitForStderr(" started: ", kWait));
  REQUIRE(WaitUntil([&] { return LogCounts(box)["wait"] == 1; }, kWait));
  REQUIRE(kill(run->pid(), SIGINT) == 0);
  ExitInfo stopped = run->Wait(kWait);
  INFO(stopped.Describe());
  const std::string marker = "resume with: ";
  size_t at = stopped.err.find(marker);
  REQUIRE(at != std::string::npos);
  std::string command = stopped.err.substr(at + marker.size());
  command = command.substr(0, command.find('\n'));
  CHECK(command.find("--db " + box.db()) != std::string::npos);

  // Run the printed command through a shell from another directory.
  box.Write("go", "");
  std::string shell_command = command.substr(command.find("keel ") + 5);
  ExitInfo resumed =
      Subprocess(
          "/bin/sh",
          SpawnOptions{
              .args = {"-c", std::string(KEEL_BIN) + " " + shell_command}, .cwd = "/", .env = {}})
          .Wait(kWait);
  INFO(resumed.Describe());
  CHECK(resumed.exit_code == 0);
  CHECK(box.Show(RunIdFromStderr(stopped.err))["status"].Str() == "succeeded");
}

}  // namespace
}  // namespace keel::testing
