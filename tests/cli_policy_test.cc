// The policy stack through the real binary: attempt and total timeouts that
// really stop the work, retries and their kinds and delays, and fallback
// workflows. Joins, bulkheads and the policy examples are in
// cli_join_test.cc; breakers shared between processes in
// cli_breaker_process_test.cc.

#include "tests/policy_test_util.h"

namespace keel::testing {
namespace {

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
  for (auto expected : {std::pair{"bad_request", "permanent"}, {"not_listed", "transient"}}) {
    const char* node = expected.first;
    const char* kind = expected.second;
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
  for (auto expected : {std::pair{"short_backoff", 0.3}, {"long_backoff", 0.5}}) {
    const char* node = expected.first;
    double delay = expected.second;
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

const char kFallbackByKind[] = R"lua(local keel = require "keel"
keel.workflow "cheap" {
  keel.fn "output" { run = function(ctx)
    return { via = "cheap", failure = ctx.failure, topic = ctx.params.topic }
  end },
}
keel.workflow "offline" {
  keel.fn "output" { run = function(ctx) return { via = "offline", failure = ctx.failure } end },
}
return keel.workflow "by_kind" {
  params = { topic = "breakers" },
  keel.fn "limited" {
    retry = { attempts = 2, base = 0.01 },
    fallback = { { on = { "rate_limited", "timeout" }, workflow = "cheap" }, "offline" },
    run = function() keel.fail { kind = "rate_limited", message = "429 from provider" } end,
  },
  keel.fn "broken" {
    fallback = { { on = "rate_limited", workflow = "cheap" }, "offline" },
    run = function() error("bad prompt") end,
  },
  keel.fn "plain" { run = function(ctx) return ctx.failure == nil end },
}
)lua";

TEST_CASE("fallback: entries picked by kind; the fallback sees ctx.failure" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("by_kind.lua", kFallbackByKind);
  Json out = RunJson(box, wf, 0);
  Json limited = out["outputs"]["limited"];
  CHECK(limited["via"].Str() == "cheap");
  CHECK(limited["topic"].Str() == "breakers");
  CHECK(limited["failure"]["node"].Str() == "limited");
  CHECK(limited["failure"]["kind"].Str() == "rate_limited");
  CHECK(limited["failure"]["message"].Str().find("429 from provider") != std::string::npos);
  CHECK(limited["failure"]["attempts"].Dump() == "2");
  Json broken = out["outputs"]["broken"];
  CHECK(broken["via"].Str() == "offline");
  CHECK(broken["failure"]["kind"].Str() == "error");
  CHECK(out["outputs"]["plain"].Dump() == "true");

  std::string bad = box.Write("bad_rule.lua", R"lua(local keel = require "keel"
keel.workflow "cheap" { keel.fn "output" { run = function() return 1 end } }
return keel.workflow "main" {
  keel.fn "a" {
    fallback = { { on = { "rate_limit" }, workflow = "cheap" } },
    run = function() return 1 end,
  },
}
)lua");
  ExitInfo r = box.Keel({"validate", bad});
  INFO(r.Describe());
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("bad_rule.lua:4") != std::string::npos);
  CHECK(r.err.find("unknown error kind") != std::string::npos);
  std::string shape = box.Write("bad_shape.lua", R"lua(local keel = require "keel"
keel.workflow "cheap" { keel.fn "output" { run = function() return 1 end } }
return keel.workflow "main" {
  keel.fn "a" { fallback = { { when = "timeout", workflow = "cheap" } }, run = function() end },
}
)lua");
  r = box.Keel({"validate", shape});
  INFO(r.Describe());
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("bad_shape.lua:4") != std::string::npos);
  CHECK(r.err.find("fallback") != std::string::npos);
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

}  // namespace
}  // namespace keel::testing
