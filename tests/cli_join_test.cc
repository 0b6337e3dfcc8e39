// The policy stack through the real binary, continued: any/quorum/
// best-effort joins, bulkheads, and the policy examples.

#include <algorithm>

#include "tests/policy_test_util.h"

namespace keel::testing {
namespace {

TEST_CASE("join any: the first success wins and the spinning losers really stop" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("race.lua", R"lua(local keel = require "keel"
return keel.workflow "race" {
  keel.fn "fast" { run = function() keel.sleep(0.05) return "fast" end },
  keel.fn "spin_a" { run = function() while true do end end },
  keel.fn "spin_b" { run = function() while true do end end },
  keel.fn "pick" {
    after = { "fast", "spin_a", "spin_b" }, join = "any",
    run = function(ctx)
      keel.sleep(2)  -- losers still spinning now would burn 2 CPU seconds each
      local got = {}
      for name in pairs(ctx.deps) do got[#got + 1] = name end
      table.sort(ctx.failed)
      return { got = got, failed = ctx.failed }
    end,
  },
}
)lua");
  double cpu_before = ChildCpuSeconds();
  // A spinning Lua body keeps its worker until it is stopped, and the winner
  // needs a free worker to wake from keel.sleep: give it one besides the two
  // spinners whatever the machine's core count.
  Json out = RunJson(box, wf, 0, {"--workers", "4"});
  double cpu = ChildCpuSeconds() - cpu_before;
  CHECK(out["status"].Str() == "succeeded");
  CHECK(out["outputs"]["pick"]["got"].Dump() == R"(["fast"])");
  CHECK(out["outputs"]["pick"]["failed"].Dump() == R"(["spin_a","spin_b"])");
  // Far below the >= 2 s two spinning threads would use during pick's sleep.
  CHECK(cpu < 1.0);

  Json show = box.Show(out["run_id"].Str(), true);
  for (const char* loser : {"spin_a", "spin_b"}) {
    CAPTURE(loser);
    CHECK(NodeEntry(show["nodes"], loser)["status"].Str() == "cancelled");
    CHECK(Events(show, "node_cancelled", loser).size() == 1);
  }
  std::vector<Json> joined = Events(show, "join_satisfied", "pick");
  REQUIRE(joined.size() == 1);
  CHECK(joined[0]["data"]["join"].Str() == "any");
  CHECK(joined[0]["data"]["succeeded"].Int() == 1);
  CHECK(joined[0]["data"]["of"].Int() == 3);
}

TEST_CASE("join quorum and best_effort run with what arrived; ctx.failed names the rest" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("joins.lua", R"lua(local keel = require "keel"
local function report(ctx)
  local got = {}
  for name in pairs(ctx.deps) do got[#got + 1] = name end
  table.sort(got)
  table.sort(ctx.failed)
  return { got = got, failed = ctx.failed }
end
return keel.workflow "joins" {
  keel.fn "a" { run = function() keel.sleep(0.05) return "a" end },
  keel.fn "b" { run = function() keel.sleep(0.1) return "b" end },
  keel.fn "never" { run = function() keel.sleep(60) return "never" end },
  keel.fn "broken" { optional = true, run = function() error("down") end },
  keel.fn "two_of_three" { after = { "a", "b", "never" }, join = { quorum = 2 }, run = report },
  keel.fn "within" {
    after = { "a", "b", "never", "broken" }, join = { best_effort = 0.3 }, run = report,
  },
}
)lua");
  Json out = RunJson(box, wf, 3);  // `broken` is optional
  CHECK(out["outputs"]["two_of_three"]["got"].Dump() == R"(["a","b"])");
  CHECK(out["outputs"]["two_of_three"]["failed"].Dump() == R"(["never"])");
  CHECK(out["outputs"]["within"]["got"].Dump() == R"(["a","b"])");
  CHECK(out["outputs"]["within"]["failed"].Dump() == R"(["broken","never"])");
  CHECK(out["nodes"]["never"]["status"].Str() == "cancelled");

  Json show = box.Show(out["run_id"].Str(), true);
  std::vector<Json> quorum = Events(show, "join_satisfied", "two_of_three");
  REQUIRE(quorum.size() == 1);
  CHECK(quorum[0]["data"]["join"].Str() == "quorum 2");
  CHECK(quorum[0]["data"]["succeeded"].Int() == 2);
  CHECK(quorum[0]["data"]["ok"].Bool());
}

TEST_CASE("join quorum: too few successes cancel the join node" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("short.lua", R"lua(local keel = require "keel"
return keel.workflow "short" {
  keel.fn "a" { run = function() return "a" end },
  keel.fn "b" { run = function() error("b down") end },
  keel.fn "c" { run = function() error("c down") end },
  keel.fn "two" { after = { "a", "b", "c" }, join = { quorum = 2 }, run = function() return 1 end },
}
)lua");
  Json out = RunJson(box, wf, 1);
  CHECK(out["nodes"]["two"]["status"].Str() == "cancelled");
  CHECK(out["nodes"]["two"]["error"].Str().find("quorum") != std::string::npos);
}

// Six nodes that log "start NAME" / "end NAME" around a 0.1 s keel.sleep.
std::string Overlapping(const std::string& defaults) {
  return R"lua(local keel = require "keel"
local nodes = {}
for i = 1, 6 do
  nodes[#nodes + 1] = keel.fn("n" .. i) { run = function(ctx)
    local function log(what)
      local f = assert(io.open(ctx.params.dir .. "/overlap.log", "a"))
      f:write(what, " ", ctx.node, "\n")
      f:close()
    end
    log("start")
    keel.sleep(0.1)
    log("end")
    return i
  end }
end
nodes.params = { dir = "" }
nodes.defaults = { )lua" +
         defaults + R"lua( }
return keel.workflow "overlap" (nodes)
)lua";
}

// The most nodes between their "start" and "end" lines at once in `log`.
int MaxOverlap(const std::string& log) {
  int now = 0, most = 0;
  for (const std::string& line : Lines(log)) {
    now += line.rfind("start ", 0) == 0 ? 1 : -1;
    most = std::max(most, now);
  }
  return most;
}

TEST_CASE("bulkheads: max_concurrency and --max-inflight bound the attempts at once" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string dir_param = "dir=" + box.dir();

  SUBCASE("max_concurrency = 2 over six nodes sharing a key") {
    std::string wf =
        box.Write("overlap.lua", Overlapping(R"(max_concurrency = { limit = 2, key = "io" })"));
    Json out = RunJson(box, wf, 0, {"-p", dir_param});
    CHECK(out["status"].Str() == "succeeded");
    std::string log = ReadFile(box.Path("overlap.log")).value_or("");
    INFO(log);
    CHECK(Lines(log).size() == 12);
    CHECK(MaxOverlap(log) == 2);
    CHECK_FALSE(Events(box.Show(out["run_id"].Str(), true), "bulkhead_queued").empty());
  }
  SUBCASE("--max-inflight 1 serializes them") {
    std::string wf = box.Write("overlap.lua", Overlapping(""));
    Json out = RunJson(box, wf, 0, {"-p", dir_param, "--max-inflight", "1"});
    CHECK(out["status"].Str() == "succeeded");
    std::string log = ReadFile(box.Path("overlap.log")).value_or("");
    INFO(log);
    CHECK(Lines(log).size() == 12);
    CHECK(MaxOverlap(log) == 1);
  }
}

std::string Example(const std::string& name) {
  return std::string(KEEL_SOURCE_DIR) + "/examples/" + name;
}

TEST_CASE("examples: flaky.lua heals by retrying" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  Json out = RunJson(box, Example("flaky.lua"), 0);
  CHECK(out["outputs"]["summary"]["fetched_on_attempt"].Int() == 3);
  CHECK(out["nodes"]["fetch"]["attempts"].Int() == 3);
  Json show = box.Show(out["run_id"].Str(), true);
  CHECK(Events(show, "retry_scheduled", "fetch").size() == 2);

  Json gives_up = RunJson(box, Example("flaky.lua"), 1, {"-p", "failures=9"});
  CHECK(gives_up["nodes"]["fetch"]["attempts"].Int() == 4);
  Json permanent = RunJson(box, Example("flaky.lua"), 1, {"-p", "kind=permanent"});
  CHECK(permanent["nodes"]["fetch"]["attempts"].Int() == 1);
}

TEST_CASE("examples: breaker_fallback.lua opens its breaker and answers from the fallback" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  const std::vector<std::string> prices{"price_apple", "price_bread", "price_cheese",
                                        "price_dates"};
  Json out = RunJson(box, Example("breaker_fallback.lua"), 0);
  CHECK(out["outputs"]["total"]["total"].Num() == doctest::Approx(23.8));
  CHECK(out["outputs"]["total"]["sources"]["cache"].Int() == 4);
  for (const std::string& node : prices) CHECK(out["nodes"][node]["status"].Str() == "fallback");
  Json show = box.Show(out["run_id"].Str(), true);
  CHECK(Events(show, "breaker_opened").size() == 1);
  CHECK(Events(show, "circuit_rejected").size() == 2);
  CHECK(Events(show, "fallback_finished").size() == 4);

  ExitInfo breakers = box.KeelDb({"breakers", "--json"});
  INFO(breakers.Describe());
  REQUIRE(breakers.exit_code == 0);
  Json list = Json::Parse(breakers.out);
  REQUIRE(list.Size() == 1);
  CHECK(list[0]["key"].Str() == "pricing");
  CHECK(list[0]["state"].Str() == "open");

  // The next run finds the breaker open: no call goes out at all.
  Json again = RunJson(box, Example("breaker_fallback.lua"), 0);
  for (const std::string& node : prices) {
    CAPTURE(node);
    CHECK(again["nodes"][node]["status"].Str() == "fallback");
    CHECK(again["nodes"][node]["attempts"].Int() == 0);
  }
}

TEST_CASE("examples: race.lua takes the fast provider and cancels the slow one" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  // With the slow provider at 60 s, finishing at all within kPrompt proves it was stopped.
  Json out = RunJson(box, Example("race.lua"), 0, {"-p", "slow_s=60"});
  CHECK(out["outputs"]["answer"]["winner"].Str() == "fast");
  CHECK(out["outputs"]["answer"]["not_arrived"].Dump() == R"(["slow"])");
  CHECK(out["nodes"]["slow"]["status"].Str() == "cancelled");
  CHECK(out["nodes"]["fast"]["status"].Str() == "succeeded");
}

}  // namespace
}  // namespace keel::testing
