// The policy stack through the real binary: attempt and total timeouts that
// really stop the work, retries and their kinds and delays, fallback
// workflows, any/quorum/best-effort joins, bulkheads, and the policy
// examples. Breakers shared between processes are in
// cli_breaker_process_test.cc.

#include <doctest/doctest.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/files.h"
#include "tests/support/json.h"
#include "tests/support/keel_cli.h"
#include "tests/support/sandbox.h"

namespace keel::testing {
namespace {

constexpr int kTimeoutS = 60;
// Bounds a run that must stop on its own: far above what any of them takes,
// far below what the work they stop would take.
constexpr auto kPrompt = std::chrono::seconds(20);

// Runs `wf` with --json, bounded by kPrompt; checks that it stopped by itself
// with `expected_exit`, and returns stdout parsed.
Json RunJson(const Sandbox& box, const std::string& wf, int expected_exit,
             const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args{"run", wf, "--json"};
  args.insert(args.end(), extra.begin(), extra.end());
  ExitInfo r = box.KeelDb(args, kPrompt);
  INFO(r.Describe());
  REQUIRE_FALSE(r.timed_out);
  REQUIRE(r.exit_code == expected_exit);
  return Json::Parse(r.out);
}

// The events of `show` (keel show --json --events) of `kind`, for `node`
// when it is not empty.
std::vector<Json> Events(const Json& show, const std::string& kind, const std::string& node = "") {
  std::vector<Json> found;
  for (size_t i = 0; i < show["events"].Size(); ++i) {
    Json e = show["events"][i];
    if (e["kind"].Str() == kind && (node.empty() || e["node"].Str() == node)) found.push_back(e);
  }
  return found;
}

// Seconds since the epoch of an ISO 8601 UTC time such as 2026-11-23T19:23:01.719Z.
double IsoSeconds(const std::string& iso) {
  std::tm tm{};
  double seconds = 0;
  REQUIRE(std::sscanf(iso.c_str(), "%d-%d-%dT%d:%d:%lfZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                      &tm.tm_hour, &tm.tm_min, &seconds) == 6);
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<double>(timegm(&tm)) + seconds;
}

// Lines of `text`, in order.
std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// CPU seconds (user + system) of this process's children reaped so far.
double ChildCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_CHILDREN, &usage);
  auto seconds = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

TEST_CASE("timeout: an attempt is really stopped and fails with kind timeout" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);

  SUBCASE("an endless Lua loop") {
    std::string wf = box.Write("spin.lua", R"lua(local keel = require "keel"
return keel.workflow "spin" {
  keel.fn "spin" { timeout = 0.3, run = function() while true do end end },
}
)lua");
    Json out = RunJson(box, wf, 1);
    Json spin = NodeEntry(box.Show(out["run_id"].Str())["nodes"], "spin");
    CHECK(spin["status"].Str() == "failed");
    CHECK(spin["error_kind"].Str() == "timeout");
    CHECK(spin["attempts"].Int() == 1);
  }
  SUBCASE("a long keel.sleep, in an optional node: the run is degraded") {
    std::string wf = box.Write("nap.lua", R"lua(local keel = require "keel"
return keel.workflow "nap" {
  keel.fn "nap" { optional = true, timeout = 0.3, run = function() keel.sleep(60) return 1 end },
  keel.fn "after" { after = { "nap" }, run = function(ctx) return ctx.failed end },
}
)lua");
    Json out = RunJson(box, wf, 3);
    CHECK(out["outputs"]["after"].Dump() == R"(["nap"])");
    Json nap = NodeEntry(box.Show(out["run_id"].Str())["nodes"], "nap");
    CHECK(nap["status"].Str() == "failed");
    CHECK(nap["error_kind"].Str() == "timeout");
  }
}

TEST_CASE("total_timeout bounds all attempts and the waits between them" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);

  SUBCASE("across retries: it passes during the second attempt") {
    std::string wf = box.Write("total.lua", R"lua(local keel = require "keel"
return keel.workflow "total" {
  keel.fn "slow_fail" {
    total_timeout = 0.5,
    retry = { attempts = 100, base = 0.01, jitter = "none" },
    run = function()
      keel.sleep(0.3)
      keel.fail { kind = "transient", message = "still down" }
    end,
  },
}
)lua");
    Json out = RunJson(box, wf, 1);
    Json show = box.Show(out["run_id"].Str(), true);
    Json node = NodeEntry(show["nodes"], "slow_fail");
    CHECK(node["error_kind"].Str() == "timeout");
    CHECK(node["error"].Str().find("total timeout") != std::string::npos);
    CHECK(node["attempts"].Int() == 2);
    CHECK(Events(show, "retry_scheduled", "slow_fail").size() == 1);
    CHECK(Events(show, "total_timeout", "slow_fail").size() == 1);
  }
  SUBCASE("inside an endless attempt, with retries left") {
    std::string wf = box.Write("total.lua", R"lua(local keel = require "keel"
return keel.workflow "total" {
  keel.fn "spin" {
    total_timeout = 0.5,
    retry = { attempts = 5, base = 0.01 },
    run = function() while true do end end,
  },
}
)lua");
    Json out = RunJson(box, wf, 1);
    Json show = box.Show(out["run_id"].Str(), true);
    Json spin = NodeEntry(show["nodes"], "spin");
    CHECK(spin["error_kind"].Str() == "timeout");
    CHECK(spin["attempts"].Int() == 1);
    CHECK(Events(show, "retry_scheduled", "spin").empty());
  }
}

TEST_CASE("retry: transient failures are retried until an attempt succeeds" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("retry.lua", R"lua(local keel = require "keel"
return keel.workflow "retry" {
  keel.fn "flaky" {
    retry = { attempts = 3, base = 0.01 },
    run = function(ctx)
      if ctx.attempt < 3 then keel.fail { kind = "transient", message = "reset" } end
      return ctx.attempt
    end,
  },
}
)lua");
  Json out = RunJson(box, wf, 0);
  CHECK(out["outputs"]["flaky"].Int() == 3);
  Json show = box.Show(out["run_id"].Str(), true);
  Json flaky = NodeEntry(show["nodes"], "flaky");
  CHECK(flaky["status"].Str() == "succeeded");
  CHECK(flaky["attempts"].Int() == 3);
  std::vector<Json> scheduled = Events(show, "retry_scheduled", "flaky");
  REQUIRE(scheduled.size() == 2);
  CHECK(scheduled[0]["data"]["attempt"].Int() == 2);
  CHECK(scheduled[1]["data"]["attempt"].Int() == 3);
  for (const Json& e : scheduled) CHECK(e["data"]["after"].Str() == "transient");
  std::vector<Json> failed = Events(show, "attempt_failed", "flaky");
  REQUIRE(failed.size() == 2);
  CHECK(failed[0]["data"]["kind"].Str() == "transient");
}

TEST_CASE("retry: kinds that are not retried fail on the first attempt" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("noretry.lua", R"lua(local keel = require "keel"
return keel.workflow "noretry" {
  keel.fn "bad_request" {
    retry = { attempts = 5, base = 0.01 },
    run = function() keel.fail { kind = "permanent", message = "400 bad request" } end,
  },
  keel.fn "not_listed" {
    retry = { attempts = 5, base = 0.01, on = { "timeout" } },
    run = function() keel.fail { kind = "transient", message = "503" } end,
  },
}
)lua");
  Json out = RunJson(box, wf, 1);
  Json show = box.Show(out["run_id"].Str(), true);
  for (auto [node, kind] : {std::pair{"bad_request", "permanent"}, {"not_listed", "transient"}}) {
    CAPTURE(node);
    Json entry = NodeEntry(show["nodes"], node);
    CHECK(entry["status"].Str() == "failed");
    CHECK(entry["error_kind"].Str() == kind);
    CHECK(entry["attempts"].Int() == 1);
    CHECK(Events(show, "retry_scheduled", node).empty());
  }
}

TEST_CASE("retry: retry_after is a floor under the backoff, not a replacement" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("after.lua", R"lua(local keel = require "keel"
local function limited(ctx)
  if ctx.attempt == 1 then keel.fail { kind = "rate_limited", message = "429", retry_after = 0.3 } end
  return ctx.attempt
end
return keel.workflow "after" {
  keel.fn "short_backoff" { retry = { attempts = 2, base = 0.01, jitter = "none" }, run = limited },
  keel.fn "long_backoff" { retry = { attempts = 2, base = 0.5, jitter = "none" }, run = limited },
}
)lua");
  Json out = RunJson(box, wf, 0);
  Json show = box.Show(out["run_id"].Str(), true);
  for (auto [node, delay] : {std::pair{"short_backoff", 0.3}, {"long_backoff", 0.5}}) {
    CAPTURE(node);
    std::vector<Json> scheduled = Events(show, "retry_scheduled", node);
    REQUIRE(scheduled.size() == 1);
    CHECK(scheduled[0]["data"]["delay"].Num() == doctest::Approx(delay));
    CHECK(scheduled[0]["data"]["after"].Str() == "rate_limited");
    // The second attempt really waited: a timer never fires early (1 ms
    // for the rounding of recorded times).
    std::vector<Json> started = Events(show, "attempt_started", node);
    REQUIRE(started.size() == 1);
    CHECK(IsoSeconds(started[0]["ts"].Str()) - IsoSeconds(scheduled[0]["ts"].Str()) >=
          delay - 0.001);
  }
}

const char kFallbacks[] = R"lua(local keel = require "keel"
keel.workflow "offline" {
  keel.fn "note" { run = function() return "a sink that is not the output" end },
  keel.fn "output" { run = function(ctx)
    return { text = "offline draft on " .. ctx.params.topic, outline = ctx.deps.outline }
  end },
}
keel.workflow "also_down" {
  keel.fn "x" { run = function() error("the backup is down too") end },
}
return keel.workflow "fallbacks" {
  params = { topic = "breakers" },
  keel.fn "outline" { run = function() return { "intro", "states" } end },
  keel.fn "draft" {
    after = { "outline" }, fallback = "offline",
    run = function() error("provider down") end,
  },
  keel.fn "draft_list" {
    after = { "outline" }, fallback = { "also_down", "offline" },
    run = function() keel.fail { kind = "transient", message = "provider down" } end,
  },
  keel.fn "draft_none" {
    optional = true, fallback = { "also_down" },
    run = function() error("provider down") end,
  },
  keel.fn "publish" { after = { "draft", "draft_list" }, run = function(ctx)
    return { draft = ctx.deps.draft, draft_list = ctx.deps.draft_list }
  end },
}
)lua";

TEST_CASE("fallback: a failed node ends `fallback` with the fallback workflow's output" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("fallbacks.lua", kFallbacks);
  Json out = RunJson(box, wf, 3);  // draft_none's fallbacks all fail: degraded
  std::string expected = R"({"outline":["intro","states"],"text":"offline draft on breakers"})";
  CHECK(out["outputs"]["publish"]["draft"].Dump() == expected);
  CHECK(out["outputs"]["publish"]["draft_list"].Dump() == expected);

  Json show = box.Show(out["run_id"].Str(), true);
  for (const char* node : {"draft", "draft_list"}) {
    CAPTURE(node);
    Json entry = NodeEntry(show["nodes"], node);
    CHECK(entry["status"].Str() == "fallback");
    CHECK(entry["output"].Dump() == expected);
  }
  CHECK(NodeEntry(show["nodes"], "publish")["status"].Str() == "succeeded");

  // A list is tried in order until one succeeds.
  std::vector<Json> started = Events(show, "fallback_started", "draft_list");
  std::vector<Json> finished = Events(show, "fallback_finished", "draft_list");
  REQUIRE(started.size() == 2);
  REQUIRE(finished.size() == 2);
  CHECK(started[0]["data"]["workflow"].Str() == "also_down");
  CHECK(started[0]["data"]["after"].Str() == "transient");
  CHECK(finished[0]["data"]["status"].Str() == "failed");
  CHECK(started[1]["data"]["workflow"].Str() == "offline");
  CHECK(finished[1]["data"]["status"].Str() == "succeeded");

  // When every fallback fails, the node fails with its own error.
  Json none = NodeEntry(show["nodes"], "draft_none");
  CHECK(none["status"].Str() == "failed");
  CHECK(none["error"].Str().find("provider down") != std::string::npos);
  CHECK(none["error"].Str().find("also_down") != std::string::npos);
}

TEST_CASE("fallback: an undeclared workflow or a cycle is a validation error" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string undeclared = box.Write("undeclared.lua", R"lua(local keel = require "keel"
keel.workflow "offline" {
  keel.fn "template" { run = function() return "t" end },
}
return keel.workflow "main" {
  keel.fn "draft" { fallback = { "offline", "ofline" }, run = function() error("down") end },
}
)lua");
  std::string cycle = box.Write("cycle.lua", R"lua(local keel = require "keel"
keel.workflow "first" {
  keel.fn "x" { fallback = "second", run = function() error("down") end },
}
keel.workflow "second" {
  keel.fn "y" { fallback = "first", run = function() error("down") end },
}
return keel.workflow "main" {
  keel.fn "draft" { fallback = "first", run = function() error("down") end },
}
)lua");
  struct Case {
    std::string file, where, what;
  };
  for (const Case& c : {Case{undeclared, "undeclared.lua:6:", "'ofline'"},
                        Case{cycle, "cycle.lua:", "first -> second -> first"}}) {
    for (const char* command : {"run", "validate"}) {
      CAPTURE(c.file);
      CAPTURE(command);
      ExitInfo r = std::string(command) == "run" ? box.KeelDb({"run", c.file})
                                                 : box.Keel({"validate", c.file});
      INFO(r.Describe());
      CHECK(r.exit_code == 2);
      CHECK(r.err.find(c.where) != std::string::npos);
      CHECK(r.err.find(c.what) != std::string::npos);
    }
  }
  if (FileExists(box.db())) CHECK(box.Runs().Size() == 0);  // nothing was run
}

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
