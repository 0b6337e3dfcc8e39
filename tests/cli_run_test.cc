// `keel run` end to end: exit codes, stdout/stderr formats, --json, params,
// `when`, optional nodes, modules and parallelism, through the real binary.
// Bad invocations and scripts that misbehave are in cli_run_errors_test.cc.

#include <doctest/doctest.h>

#include <filesystem>
#include <regex>
#include <string>
#include <vector>

#include "tests/cli_run_util.h"
#include "tests/support/files.h"
#include "tests/support/json.h"
#include "tests/support/keel_cli.h"
#include "tests/support/sandbox.h"

namespace keel::testing {
namespace {

constexpr int kTimeoutS = 120;

TEST_CASE("run: success exits 0 and prints the run line and the sinks' outputs" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("pipeline.lua", kPipeline);
  ExitInfo r = box.KeelDb({"run", wf});
  INFO(r.Describe());
  REQUIRE(r.exit_code == 0);

  std::smatch started;
  REQUIRE(std::regex_search(
      r.err, started, std::regex(R"((^|\n)run (\S+) started: workflow pipeline \(3 nodes\)\n)")));
  std::string id = started[2].str();
  CHECK(std::regex_search(r.err, std::regex(R"(\ba started\n)")));
  CHECK(std::regex_search(r.err, std::regex(R"(\bb succeeded in [0-9.]+s\n)")));

  CHECK(std::regex_search(r.out,
                          std::regex("^run " + id + R"( succeeded in [0-9.]+s \(3/3 nodes\)\n)")));
  CHECK(r.out.find("\n  b = {\"total\":21}\n") != std::string::npos);
  CHECK(r.out.find("\n  c = \"c20\"") != std::string::npos);
  CHECK(r.out.find("  a = ") == std::string::npos);  // not a sink
  CHECK(r.out.find("error:") == std::string::npos);
}

TEST_CASE("run --json prints one object with the run, its sinks and its nodes" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("pipeline.lua", kPipeline);
  ExitInfo r = box.KeelDb({"run", wf, "--json"});
  INFO(r.Describe());
  REQUIRE(r.exit_code == 0);
  Json out = Json::Parse(r.out);
  CHECK(out["run_id"].Str() == RunIdFromStderr(r.err));
  CHECK(!out["run_id"].Str().empty());
  CHECK(out["workflow"].Str() == "pipeline");
  CHECK(out["status"].Str() == "succeeded");
  CHECK(out["duration_s"].IsNumber());
  CHECK(out["error"].IsNull());
  CHECK(out["outputs"].Size() == 2);
  CHECK(out["outputs"]["b"]["total"].Int() == 21);
  CHECK(out["outputs"]["c"].Str() == "c20");
  CHECK(out["nodes"].Size() == 3);
  for (const char* name : {"a", "b", "c"}) {
    CAPTURE(name);
    CHECK(out["nodes"][name]["status"].Str() == "succeeded");
    CHECK(out["nodes"][name]["attempts"].Int() == 1);
  }
}

TEST_CASE(
    "run: a failed required node fails the run; dependents are cancelled, "
    "an independent branch finishes" *
    doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("broken.lua", R"lua(local keel = require "keel"
return keel.workflow "broken" {
  keel.fn "a" { run = function() return 1 end },
  keel.fn "b" { after = { "a" }, run = function() error("disk on fire") end },
  keel.fn "c" { after = { "b" }, run = function() return 3 end },
  keel.fn "side" { run = function() keel.sleep(0.2) return "ok" end },
}
)lua");

  SUBCASE("plain output") {
    ExitInfo r = box.KeelDb({"run", wf});
    INFO(r.Describe());
    REQUIRE(r.exit_code == 1);
    std::string id = RunIdFromStderr(r.err);
    CHECK(std::regex_search(r.out, std::regex("^run " + id + R"( failed in [0-9.]+s)")));
    // The last line, and one line: `error: <node>: <kind>: <message>`.
    CHECK(
        std::regex_search(r.out, std::regex(R"(\nerror: b: error: [^\n]*disk on fire[^\n]*\n?$)")));
    CHECK(std::regex_search(r.err,
                            std::regex(R"(\bb failed in [0-9.]+s: error: [^\n]*disk on fire)")));
    CHECK(std::regex_search(r.err, std::regex(R"(\bc cancelled: )")));

    Json show = box.Show(id);
    CHECK(show["status"].Str() == "failed");
    CHECK(NodeEntry(show["nodes"], "a")["status"].Str() == "succeeded");
    CHECK(NodeEntry(show["nodes"], "b")["status"].Str() == "failed");
    CHECK(NodeEntry(show["nodes"], "b")["error_kind"].Str() == "error");
    CHECK(NodeEntry(show["nodes"], "b")["error"].Str().find("disk on fire") != std::string::npos);
    CHECK(NodeEntry(show["nodes"], "c")["status"].Str() == "cancelled");
    CHECK(NodeEntry(show["nodes"], "side")["status"].Str() == "succeeded");
    CHECK(NodeEntry(show["nodes"], "side")["output"].Str() == "ok");
  }
  SUBCASE("--json") {
    Json out = RunJson(box, wf, 1);
    CHECK(out["status"].Str() == "failed");
    CHECK(out["error"].Str().find("disk on fire") != std::string::npos);
    CHECK(out["nodes"]["b"]["status"].Str() == "failed");
    CHECK(out["nodes"]["b"]["error_kind"].Str() == "error");
    CHECK(out["nodes"]["c"]["status"].Str() == "cancelled");
    CHECK(out["nodes"]["side"]["status"].Str() == "succeeded");
    CHECK(out["outputs"]["side"].Str() == "ok");
    CHECK(out["outputs"]["c"].IsNull());
  }
}

TEST_CASE("run: a failed optional node degrades the run (exit 3) and its dependents still run" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("degraded.lua", R"lua(local keel = require "keel"
return keel.workflow "degraded" {
  keel.fn "a" { run = function() return 1 end },
  keel.fn "flaky" { after = { "a" }, optional = true, run = function() error("optional boom") end },
  keel.fn "after_flaky" { after = { "flaky" }, run = function(ctx)
    return { missing = ctx.deps.flaky == nil, failed = ctx.failed }
  end },
}
)lua");
  Json out = RunJson(box, wf, 3);
  CHECK(out["status"].Str() == "degraded");
  CHECK(out["nodes"]["flaky"]["status"].Str() == "failed");
  CHECK(out["nodes"]["after_flaky"]["status"].Str() == "succeeded");
  CHECK(out["outputs"]["after_flaky"]["missing"].Bool());
  CHECK(out["outputs"]["after_flaky"]["failed"].Dump().find("\"flaky\"") != std::string::npos);

  ExitInfo plain = box.KeelDb({"run", wf});
  INFO(plain.Describe());
  CHECK(plain.exit_code == 3);
  CHECK(std::regex_search(plain.out, std::regex(R"(^run \S+ degraded in )")));
}

TEST_CASE("run: `when` false skips a node and its dependent still runs" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("gate.lua", R"lua(local keel = require "keel"
return keel.workflow "gate" {
  keel.fn "a" { run = function() return 1 end },
  keel.fn "gate" {
    after = { "a" },
    when = function(ctx) return ctx.deps.a > 5 end,
    run = function() error("must not run") end,
  },
  keel.fn "after_gate" { after = { "gate" }, run = function(ctx)
    return { has = ctx.deps.gate ~= nil, skipped = ctx.skipped }
  end },
}
)lua");
  ExitInfo r = box.KeelDb({"run", wf, "--json"});
  INFO(r.Describe());
  REQUIRE(r.exit_code == 0);
  Json out = Json::Parse(r.out);
  CHECK(out["status"].Str() == "succeeded");
  CHECK(out["nodes"]["gate"]["status"].Str() == "skipped");
  CHECK(out["nodes"]["after_gate"]["status"].Str() == "succeeded");
  CHECK(out["outputs"]["after_gate"]["has"].IsBool());
  CHECK_FALSE(out["outputs"]["after_gate"]["has"].Bool());
  CHECK(out["outputs"]["after_gate"]["skipped"].Dump().find("\"gate\"") != std::string::npos);
  CHECK(std::regex_search(r.err, std::regex(R"(\bgate skipped\n)")));
}

TEST_CASE("run: a script's print and io.write go to stderr; --json stdout stays one object" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("chatty.lua", R"lua(local keel = require "keel"
print("top-level print")
return keel.workflow "chatty" {
  keel.fn "a" { run = function()
    print("node print")
    io.write("raw write\n")
    io.stdout:write("handle write\n")
    return 1
  end },
}
)lua");
  ExitInfo r = box.KeelDb({"run", wf, "--json"});
  INFO(r.Describe());
  REQUIRE(r.exit_code == 0);
  CHECK(Json::Parse(r.out)["outputs"]["a"].Int() == 1);
  for (const char* line : {"top-level print\n", "node print\n", "raw write\n", "handle write\n"}) {
    CAPTURE(line);
    CHECK(r.err.find(line) != std::string::npos);
  }
  ExitInfo graph = box.Keel({"graph", wf});
  INFO(graph.Describe());
  CHECK(graph.exit_code == 0);
  CHECK(graph.out.find("print") == std::string::npos);
}

TEST_CASE("resume from another directory still finds the script's own modules" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::filesystem::create_directory(box.Path("flow"));
  box.Write("flow/helper.lua", "return { greet = function() return 'hi' end }\n");
  box.Write("flow/gate", "closed");
  box.Write("flow/main.lua", R"lua(local keel = require "keel"
local helper = require "helper"
local dir = debug.getinfo(1, "S").source:match("^@(.*)/")
return keel.workflow "m" {
  keel.fn "a" { run = function() return helper.greet() end },
  keel.fn "b" { after = { "a" }, run = function(ctx)
    local gate = io.open(dir .. "/gate"):read("a")
    if gate ~= "open" then error("gate " .. gate) end
    return ctx.deps.a
  end },
}
)lua");
  // Started from the sandbox, not the script's directory.
  ExitInfo first = box.KeelDb({"run", "flow/main.lua"});
  INFO(first.Describe());
  REQUIRE(first.exit_code == 1);
  std::string run_id = RunIdFromStderr(first.err);
  box.Write("flow/gate", "open");
  KeelCli elsewhere(KEEL_BIN, "/");
  ExitInfo resumed = elsewhere.Run({"resume", run_id, "--db", box.db()});
  INFO(resumed.Describe());
  CHECK(resumed.exit_code == 0);
  CHECK(resumed.out.find("b = \"hi\"") != std::string::npos);
}

TEST_CASE("run: paths with spaces and URI characters" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string dir = box.Path("odd dir #1?x=%20");
  std::filesystem::create_directory(dir);
  std::string wf = dir + "/my flow.lua";
  WriteFile(wf, kPipeline);
  std::string db = dir + "/my db?mode=ro#frag.db";
  for (int i = 0; i < 2; ++i) {  // the second run opens an existing database
    CAPTURE(i);
    ExitInfo r = box.Keel({"run", wf, "--db", db});
    INFO(r.Describe());
    CHECK(r.exit_code == 0);
  }
  CHECK(FileExists(db));
  ExitInfo runs = box.Keel({"runs", "--json", "--db", db});
  INFO(runs.Describe());
  REQUIRE(runs.exit_code == 0);
  Json list = Json::Parse(runs.out);
  REQUIRE(list.Size() == 2);
  Json show = Json::Parse(box.Keel({"show", list[0]["run_id"].Str(), "--json", "--db", db}).out);
  CHECK(show["script_path"].Str() == wf);
  for (const auto& entry : std::filesystem::directory_iterator(box.dir())) {
    std::string name = entry.path().filename().string();
    CAPTURE(name);
    CHECK(name == "odd dir #1?x=%20");
  }
}

TEST_CASE("run: params take their defaults and -p overrides" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("params.lua", R"lua(local keel = require "keel"
return keel.workflow "params" {
  params = { topic = "breakers", count = 3, label = "7", extra = false, list = keel.array(),
             word = "", ratio = 0 },
  keel.fn "echo" { run = function(ctx)
    local p = ctx.params
    return { topic = p.topic, count = p.count, label = p.label, extra = p.extra,
             list = p.list, word = p.word, ratio = p.ratio }
  end },
}
)lua");

  SUBCASE("defaults") {
    Json echo = RunJson(box, wf, 0)["outputs"]["echo"];
    CHECK(echo["topic"].Str() == "breakers");
    CHECK(echo["count"].Int() == 3);
    CHECK(echo["label"].Str() == "7");
    CHECK(!echo["extra"].Bool());
  }
  SUBCASE("overrides") {
    Json echo =
        RunJson(box, wf, 0,
                {"-p", "count=5", "-p", "label=42", "-p", "extra=true", "-p", "list=[1,2]", "-p",
                 "topic=hello world", "-p", "word=abc", "-p", "ratio=2.5"})["outputs"]["echo"];
    CHECK(echo["count"].IsNumber());
    CHECK(echo["count"].Int() == 5);
    CHECK(echo["label"].IsString());  // its default is a string
    CHECK(echo["label"].Str() == "42");
    CHECK(echo["extra"].IsBool());
    CHECK(echo["extra"].Bool());
    CHECK(echo["list"].Dump() == "[1,2]");
    CHECK(echo["topic"].Str() == "hello world");
    CHECK(echo["word"].Str() == "abc");
    CHECK(echo["ratio"].Num() == doctest::Approx(2.5));
  }
  SUBCASE("a parameter the workflow does not declare is an error with a suggestion") {
    ExitInfo r = box.KeelDb({"run", wf, "-p", "cuont=5"});
    INFO(r.Describe());
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("-p cuont: the workflow declares no parameter 'cuont' (did you mean "
                     "'count'?)") != std::string::npos);
    CHECK(r.err.find("run ") == std::string::npos);  // nothing ran
  }
  SUBCASE("recorded with the run") {
    Json out = RunJson(box, wf, 0, {"-p", "count=9"});
    Json show = box.Show(out["run_id"].Str());
    CHECK(show["params"]["count"].Int() == 9);
    CHECK(show["params"]["topic"].Str() == "breakers");
  }
}

TEST_CASE("run: ctx carries run_id, node, attempt and idempotency_key" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("ctx.lua", R"lua(local keel = require "keel"
return keel.workflow "ctx" {
  keel.fn "who" { run = function(ctx)
    return { run_id = ctx.run_id, node = ctx.node, attempt = ctx.attempt,
             key = ctx.idempotency_key }
  end },
}
)lua");
  Json out = RunJson(box, wf, 0);
  std::string id = out["run_id"].Str();
  Json who = out["outputs"]["who"];
  CHECK(who["run_id"].Str() == id);
  CHECK(who["node"].Str() == "who");
  CHECK(who["attempt"].Int() == 1);
  CHECK(who["key"].Str().find(id) != std::string::npos);
  CHECK(who["key"].Str().find("who") != std::string::npos);
}

// Two nodes that each announce themselves with a file and then wait for the
// other's file: they can only both finish when they run at the same time.
std::string Handshake(const std::string& dir, bool yield) {
  std::string wait = yield ? "keel.sleep(0.01)" : "";
  std::string deadline =
      yield ? "for i = 1, 3000 do" : "local stop = os.time() + 30\n  while os.time() < stop do";
  return R"lua(local keel = require "keel"
local dir = ")lua" +
         dir + R"lua("
local function exists(p)
  local f = io.open(p, "r")
  if f then f:close() return true end
  return false
end
local function meet(me, other)
  local f = assert(io.open(dir .. "/" .. me, "w"))
  f:close()
  )lua" + deadline +
         R"lua(
    if exists(dir .. "/" .. other) then return me end
    )lua" +
         wait + R"lua(
  end
  error(me .. " never saw " .. other .. " start")
end
return keel.workflow "handshake" {
  keel.fn "left" { run = function() return meet("left", "right") end },
  keel.fn "right" { run = function() return meet("right", "left") end },
}
)lua";
}

TEST_CASE("run: independent nodes run at the same time" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  SUBCASE("waiting with keel.sleep") {
    std::string wf = box.Write("handshake.lua", Handshake(box.dir(), true));
    Json out = RunJson(box, wf, 0, {"--workers", "2"});
    CHECK(out["outputs"]["left"].Str() == "left");
    CHECK(out["outputs"]["right"].Str() == "right");
  }
  SUBCASE("busy on two workers") {
    std::string wf = box.Write("handshake.lua", Handshake(box.dir(), false));
    Json out = RunJson(box, wf, 0, {"--workers", "2"});
    CHECK(out["status"].Str() == "succeeded");
  }
}

}  // namespace
}  // namespace keel::testing
