// keel.map, keel.call and keel.loop through the real `keel` binary: maps
// over a dependency's output, maps of agents against keel-mock-llm, calls
// and loops, load-time errors, kill -9 during a map then resume, and how
// show and graph present items.

#include <signal.h>

#include <algorithm>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "tests/policy_test_util.h"
#include "tests/support/mock_llm_server.h"
#include "tests/support/sqlite_db.h"

namespace keel::testing {
namespace {

constexpr const char* kPipeline = R"lua(local keel = require "keel"
local sub = keel.workflow "enrich" {
  params = { x = 1 },
  keel.fn "double" { run = function(ctx) return ctx.params.x * 2 end },
  keel.fn "output" { after = { "double" }, run = function(ctx)
    return { v = ctx.deps.double, iteration = ctx.params.iteration, item = ctx.params.item }
  end },
}
return keel.workflow "main" {
  keel.fn "list" { run = function() return { docs = { { t = "a" }, { t = "b" }, { t = "c" } } } end },
  keel.map "upper" {
    after = { "list" },
    over = function(ctx) return ctx.deps.list.docs end,
    max_concurrency = 2,
    node = keel.fn { run = function(ctx) return ctx.item.t:upper() .. ctx.index end },
  },
  keel.map "per_doc" { after = { "list" }, over = function(ctx) return { 5, 6 } end, workflow = "enrich" },
  keel.call "c" { after = { "upper" }, workflow = sub,
                  params = function(ctx) return { x = #ctx.deps.upper } end },
  keel.loop "r" { workflow = "enrich", max_iterations = 5,
                  done_when = function(out, ctx) return out.iteration >= 3 end },
  keel.map "none" { over = function() return {} end, node = keel.fn { run = function() return 1 end } },
  keel.fn "sink" { after = { "upper", "per_doc", "c", "r", "none" }, run = function(ctx) return ctx.deps end },
}
)lua";

// The file's text; "" while it does not exist.
std::string Text(const std::string& path) { return ReadFile(path).value_or(""); }

}  // namespace

TEST_CASE("map, call and loop run end to end and are recorded under prefixed names" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("pipeline.lua", kPipeline);
  Json out = RunJson(box, wf, 0);
  Json sink = out["outputs"]["sink"];
  CHECK(sink["upper"].Dump() == R"(["A1","B2","C3"])");
  CHECK(sink["per_doc"].Dump() == R"([{"item":5,"v":2},{"item":6,"v":2}])");
  CHECK(sink["c"].Dump() == R"({"v":6})");
  CHECK(sink["r"].Dump() == R"({"iteration":3,"v":2})");
  CHECK(sink["none"].Dump() == "[]");

  std::string run = out["run_id"].Str();
  Json show = box.Show(run, true);
  for (const char* name : {"upper[1]", "upper[3]", "per_doc[2]", "per_doc[2]/double", "c/double",
                           "c/output", "r#1/output", "r#3/double"}) {
    CAPTURE(name);
    CHECK(NodeEntry(show["nodes"], name)["status"].Str() == "succeeded");
  }
  CHECK(NodeEntry(show["nodes"], "r#4/double").IsNull());
  CHECK(NodeEntry(show["nodes"], "upper[2]")["output"].Str() == "B2");
  CHECK(NodeEntry(show["nodes"], "upper")["items"]["total"].Int() == 3);
  CHECK(Events(show, "node_succeeded", "upper[2]").size() == 1);
  CHECK(Events(show, "map_started", "upper").size() == 1);
  CHECK(Events(show, "loop_iteration", "r").size() == 3);

  // Text: a map is one line with counts unless --items; inner nodes of calls
  // and loops are listed under their names.
  ExitInfo text = box.KeelDb({"show", run});
  REQUIRE(text.exit_code == 0);
  CHECK(text.out.find("upper  3 items: 3 succeeded, 0 failed") != std::string::npos);
  CHECK(text.out.find("none  0 items: 0 succeeded, 0 failed") != std::string::npos);
  CHECK(text.out.find("upper[1]") == std::string::npos);
  CHECK(text.out.find("per_doc[1]/double") == std::string::npos);
  CHECK(text.out.find("c/double") != std::string::npos);
  CHECK(text.out.find("r#2/output") != std::string::npos);
  ExitInfo items = box.KeelDb({"show", run, "--items"});
  CHECK(items.out.find("upper[2]") != std::string::npos);
  // Items are listed by number, whatever order they finished in.
  CHECK(items.out.find("upper[1]") < items.out.find("upper[2]"));
  CHECK(items.out.find("upper[2]") < items.out.find("upper[3]"));
  CHECK(items.out.find("per_doc[1]/double") != std::string::npos);

  ExitInfo graph = box.KeelDb({"graph", run, "--format", "mermaid"});
  REQUIRE(graph.exit_code == 0);
  CHECK(graph.out.find("upper (map, 3 items: 3 succeeded, 0 failed)") != std::string::npos);
  CHECK(graph.out.find("c/output") != std::string::npos);
  CHECK(graph.out.find("upper[1]") == std::string::npos);
  ExitInfo graph_items = box.KeelDb({"graph", run, "--items"});
  CHECK(graph_items.out.find("\"upper[1]\"") != std::string::npos);

  // The progress lines collapse the map too.
  ExitInfo again = box.KeelDb({"run", wf});
  REQUIRE(again.exit_code == 0);
  CHECK(again.err.find("upper  3 items: 3 succeeded, 0 failed") != std::string::npos);
  CHECK(again.err.find("upper[1]") == std::string::npos);
  CHECK(again.err.find("c/double succeeded") != std::string::npos);
}

TEST_CASE("a map tolerates failed items up to its fraction; beyond it fails with the first error" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  auto script = [](const std::string& tolerate) {
    return R"lua(local keel = require "keel"
return keel.workflow "t" {
  keel.map "m" {
    over = function() local t = {} for i = 1, 10 do t[i] = i end return t end,
    tolerate = )lua" +
           tolerate + R"lua(, max_concurrency = 1,
    node = keel.fn { run = function(ctx)
      if ctx.item % 5 == 0 then keel.fail{ kind = "permanent", message = "item " .. ctx.item .. " is bad" } end
      return ctx.item
    end },
  },
}
)lua";
  };
  Json degraded = RunJson(box, box.Write("ok.lua", script("0.2")), 3);
  CHECK(degraded["status"].Str() == "degraded");
  CHECK(degraded["outputs"]["m"].Dump() == "[1,2,3,4,null,6,7,8,9,null]");
  ExitInfo failed = box.KeelDb({"run", box.Write("bad.lua", script("0.1"))});
  CHECK(failed.exit_code == 1);
  CHECK(failed.err.find("m  10 items: 8 succeeded, 2 failed") != std::string::npos);
  Json show = box.Show(RunIdFromStderr(failed.err));
  Json m = NodeEntry(show["nodes"], "m");
  CHECK(m["status"].Str() == "failed");
  CHECK(m["error_kind"].Str() == "permanent");
  CHECK(m["error"].Str().find("item 5 is bad") != std::string::npos);
  CHECK(m["error"].Str().find("2 of 10 items failed, 1 tolerated") != std::string::npos);
}

TEST_CASE("a map of agents renders {{item.x}} and {{index}} against the mock LLM" *
          doctest::timeout(kTimeoutS)) {
  MockLlmServer server(MOCK_LLM_BIN, {});
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("agents.lua",
                             "local keel = require 'keel'\n"
                             "keel.provider 'llm' { kind = 'openai', base_url = '" +
                                 server.url() + R"lua(', model = 'mock-1' }
return keel.workflow "w" {
  keel.fn "docs" { run = function() return { { text = "alpha" }, { text = "beta" } } end },
  keel.map "summaries" {
    after = { "docs" },
    over = function(ctx) return ctx.deps.docs end,
    retry = 2,
    node = keel.agent { provider = "llm", prompt = "Summarise {{item.text}} as #{{index}}" },
  },
}
)lua");
  Json out = RunJson(box, wf, 0);
  CHECK(out["outputs"]["summaries"].Dump() ==
        R"(["echo: Summarise alpha as #1","echo: Summarise beta as #2"])");
}

TEST_CASE("mistakes in map, call and loop declarations are reported at load time" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  auto check = [&](const std::string& body, const std::string& expected) {
    std::string wf = box.Write("bad.lua",
                               "local keel = require 'keel'\n"
                               "local sub = keel.workflow 'sub' { keel.fn 'a' { run = "
                               "function() return 1 end } }\n"
                               "return keel.workflow 'w' {\n" +
                                   body + "\n}\n");
    ExitInfo r = box.Keel({"validate", wf});
    CAPTURE(body);
    INFO(r.Describe());
    CHECK(r.exit_code == 2);
    CHECK(r.err.find(expected) != std::string::npos);
  };
  check("keel.call 'c' { workflow = 'sbu' }",
        "bad.lua:4: node 'c': workflow 'sbu' is not declared in this file (did you mean 'sub'?)");
  check(
      "keel.map 'm' { over = function() return {} end, max_concurency = 2, node = keel.fn { "
      "run = function() end } }",
      "bad.lua:4: node 'm': unknown option 'max_concurency' (did you mean 'max_concurrency'?)");
  check(
      "keel.map 'm' { over = function() return {} end, tolerate = 1.5, node = keel.fn { run = "
      "function() end } }",
      "bad.lua:4: node 'm': option 'tolerate' must be a fraction from 0 to 1");
  check(
      "keel.map 'm' { over = function() return {} end, max_concurrency = 0, node = keel.fn { "
      "run = function() end } }",
      "option 'max_concurrency' must be a whole number from 1");
  check("keel.map 'm' { over = function() return {} end }", "a map needs option 'node'");
  check("keel.loop 'r' { workflow = sub, done_when = function() return true end }",
        "a loop needs option 'max_iterations'");
  check("keel.fn { run = function() end }", "is a node without a name");
  // A workflow that calls itself is refused before anything runs.
  std::string wf = box.Write("loop.lua", R"lua(local keel = require "keel"
keel.workflow "a" { keel.call "to_b" { workflow = "b" } }
keel.workflow "b" { keel.call "to_a" { workflow = "a" } }
return keel.workflow "main" { keel.call "start" { workflow = "a" } }
)lua");
  ExitInfo r = box.Keel({"validate", wf});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("runs itself: a -> b -> a") != std::string::npos);
}

TEST_CASE("`over` returning something else than a list fails the map, naming file and line" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("over.lua", R"lua(local keel = require "keel"
return keel.workflow "w" {
  keel.map "m" { over = function() return "nope" end, node = keel.fn { run = function() end } },
}
)lua");
  ExitInfo r = box.KeelDb({"run", wf});
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("over.lua:3: map 'm': `over` must return a list (a JSON array), got a string") !=
        std::string::npos);
}

TEST_CASE("kill -9 during a 2000-item map: resume runs only unrecorded items, output complete" *
          doctest::timeout(120)) {
  Sandbox box(KEEL_BIN);
  std::string log = box.Path("executions.log");
  std::string wf = box.Write("big.lua", R"lua(local keel = require "keel"
return keel.workflow "big" {
  params = { log = "" },
  keel.fn "list" { run = function()
    local t = {} for i = 1, 2000 do t[i] = { id = i } end return t
  end },
  keel.map "m" {
    after = { "list" },
    over = function(ctx) return ctx.deps.list end,
    max_concurrency = 4,
    node = keel.fn { run = function(ctx)
      keel.sleep(0.004)
      local f = io.open(ctx.params.log, "a")
      f:write(ctx.index, "\n")
      f:close()
      return ctx.item.id * 2
    end },
  },
}
)lua");
  auto first = box.StartDb({"run", wf, "-p", "log=" + log});
  // Wait until a good share of the items ran, then kill the process outright.
  auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  auto lines_in = [&] {
    std::string text = Text(log);
    return std::count(text.begin(), text.end(), '\n');
  };
  while (lines_in() < 300 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(first->pid(), SIGKILL);
  ExitInfo killed = first->Wait(std::chrono::seconds(10));
  REQUIRE(killed.signal == SIGKILL);
  std::string run = RunIdFromStderr(killed.err);
  REQUIRE_FALSE(run.empty());

  // What the store holds now: items recorded succeeded must never run again.
  std::set<int> recorded;
  {
    SqliteDb db(box.db(), false);
    for (const auto& row : db.Query("SELECT node FROM nodes WHERE run_id = '" + run +
                                    "' AND status = 'succeeded' AND node LIKE 'm[%'")) {
      recorded.insert(std::stoi(row[0].substr(2, row[0].size() - 3)));
    }
  }
  CHECK(recorded.size() >= 200);
  CHECK(recorded.size() < 2000);

  ExitInfo resumed = box.KeelDb({"resume", run, "--json"}, std::chrono::seconds(90));
  INFO(resumed.Describe());
  REQUIRE(resumed.exit_code == 0);
  Json out = Json::Parse(resumed.out);
  Json m = out["outputs"]["m"];
  REQUIRE(m.Size() == 2000);
  for (size_t i = 0; i < 2000; ++i) {
    if (m[i].Int() != static_cast<int64_t>(2 * (i + 1)))
      FAIL("item " << i + 1 << " is " << m[i].Dump());
  }
  std::map<int, int> runs;
  std::istringstream lines(Text(log));
  for (int index; lines >> index;) ++runs[index];
  CHECK(runs.size() == 2000);
  int again = 0;
  for (int k : recorded) again += runs[k] > 1 ? 1 : 0;
  CHECK(again == 0);
  CHECK(resumed.err.find("m  2000 items: 2000 succeeded, 0 failed") != std::string::npos);
}

TEST_CASE("examples: fanout.lua maps, loops and runs a program; resume --from re-runs the loop" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  const std::string example = std::string(KEEL_SOURCE_DIR) + "/examples/fanout.lua";
  Json out = RunJson(box, example, 0, {"-p", "docs=300"});
  CHECK(out["outputs"]["report"].Dump() ==
        R"({"documents":300,"review_rounds":3,"wc":300,"words":1800})");
  const std::string run = out["run_id"].Str();
  ExitInfo again = box.KeelDb({"resume", run, "--from", "review"});
  INFO(again.Describe());
  CHECK(again.exit_code == 0);
  CHECK(again.err.find("review#1/output started") != std::string::npos);
  CHECK(again.err.find("summaries started") == std::string::npos);
}

}  // namespace keel::testing
