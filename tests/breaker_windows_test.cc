// The breaker's windows on a hand-driven clock: the last N calls beside the
// time window, slow calls and the slow-call rate, and the window's JSON form
// (flags for failed and slow).

#include <doctest/doctest.h>

#include "engine/breaker_codec.h"
#include "tests/support/breaker_harness.h"

namespace keel {
namespace {

Harness Windowed(int calls, double seconds) {
  Harness h;
  h.config.failures = 1000;
  h.config.failure_rate = 0.5;
  h.config.min_calls = 4;
  h.config.window_calls = calls;
  h.config.window = seconds;
  return h;
}

}  // namespace

TEST_CASE("a call-count window holds the last N calls, however old") {
  Harness h = Windowed(4, 0);
  for (bool ok : {false, false, false, true, true, true, true}) {
    h.Call(ok);
    h.now += 3600;  // an hour between calls: no time limit applies
  }
  CHECK(h.snap.recent.size() == 4);
  CHECK(HealthPercent(h.snap) == 100);
  CHECK(h.snap.state == BreakerState::kClosed);
  h.Call(false);  // 1 of the last 4
  h.Call(false);  // 2 of the last 4: the rate is reached
  CHECK(h.snap.state == BreakerState::kOpen);
}

TEST_CASE("the failures of calls that left the count window do not count") {
  Harness h = Windowed(4, 0);
  h.Call(false);
  h.Call(true);
  h.Call(true);
  h.Call(true);
  h.Call(true);  // the failure has left
  CHECK(h.Call(false) == Admission::kAllowed);
  CHECK(h.snap.state == BreakerState::kClosed);  // 1 of 4
}

TEST_CASE("both limits: the last N calls within the time window") {
  Harness h = Windowed(10, 30);
  for (int k = 0; k < 6; ++k) {
    h.Call(true);
    h.now += 10;
  }
  // Calls at 1000..1050; at 1060 only those after 1030 are in the window.
  h.Call(true);
  CHECK(h.snap.recent.size() == 3);
  for (int k = 0; k < 20; ++k) h.Call(true);
  CHECK(h.snap.recent.size() == 10);
}

TEST_CASE("slow calls open the breaker when their share reaches the slow rate") {
  Harness h;
  h.config.failures = 1000;
  h.config.slow_seconds = 2;
  h.config.slow_rate = 0.5;
  h.config.min_calls = 4;
  h.config.window = 0;
  h.config.window_calls = 10;
  h.Call(CallOutcome(true, 2.5, false));
  h.Call(CallOutcome(true, 0.1, false));
  h.Call(CallOutcome(true, 0.1, false));
  CHECK(h.snap.state == BreakerState::kClosed);  // under min_calls
  h.Call(CallOutcome(true, 0.1, false));
  CHECK(h.snap.state == BreakerState::kClosed);  // 1 slow of 4
  h.Call(CallOutcome(true, 1.99, false));
  CHECK(h.snap.state == BreakerState::kClosed);  // under 2 s is not slow
  h.Call(CallOutcome(true, 2, false));
  CHECK(h.snap.state == BreakerState::kClosed);  // 2 of 6
  h.Call(CallOutcome(true, 3, false));
  CHECK(h.snap.state == BreakerState::kClosed);  // 3 of 7
  h.Call(CallOutcome(true, 3, false));
  CHECK(h.snap.state == BreakerState::kOpen);  // 4 of 8, and none failed
  CHECK(h.last == BreakerTransition::kOpened);
  CHECK(h.snap.slow == 4);
  CHECK(h.snap.failed == 0);
  CHECK(HealthPercent(h.snap) == 100);  // health counts failures, not slowness
}

TEST_CASE("a timed-out call counts as failed, slow and a timeout") {
  Harness h;
  h.config.failures = 1000;
  h.config.slow_seconds = 1;
  h.config.slow_rate = 0.9;
  h.Call(CallOutcome(false, 5, true));
  CHECK(h.snap.timeouts == 1);
  CHECK(h.snap.slow == 1);
  CHECK(h.snap.failed == 1);
  REQUIRE(h.snap.recent.size() == 1);
  CHECK(h.snap.recent[0].flags == (WindowCall::kFailed | WindowCall::kSlow));
}

TEST_CASE("the window round-trips through its JSON form; a damaged one reads as empty") {
  std::deque<WindowCall> w{{1.5, 0}, {2.25, WindowCall::kFailed}, {3, WindowCall::kSlow},
                           {4, WindowCall::kFailed | WindowCall::kSlow}};
  CHECK(EncodeBreakerWindow(w) == "[[1.5,0],[2.25,1],[3.0,2],[4.0,3]]");
  CHECK(DecodeBreakerWindow(EncodeBreakerWindow(w)) == w);
  CHECK(DecodeBreakerWindow("[[1.5,0],[\"x\",1]]").empty());
  CHECK(DecodeBreakerWindow("not json").empty());
}

TEST_CASE("statistics round-trip through their JSON form; unknown parts keep defaults") {
  BreakerSnapshot s;
  s.slow = 3;
  s.timeouts = 2;
  s.rejected = 7;
  s.consecutive_successes = 4;
  s.last_success_at = 1700000000.25;
  s.last_failure_at = 1700000001.5;
  s.recovering_since = 12.5;
  s.ramp_credit = 0.75;
  s.baseline = 0.125;
  s.baseline_weight = 0.5;
  s.open_streak = 3;
  s.stable_since = 99;
  s.transitions = {{1, BreakerState::kClosed, BreakerState::kOpen},
                   {2, BreakerState::kOpen, BreakerState::kForcedOpen}};
  BreakerSnapshot back;
  DecodeBreakerStats(EncodeBreakerStats(s), &back);
  CHECK(back.slow == 3);
  CHECK(back.timeouts == 2);
  CHECK(back.rejected == 7);
  CHECK(back.consecutive_successes == 4);
  CHECK(back.last_success_at == s.last_success_at);
  CHECK(back.last_failure_at == s.last_failure_at);
  CHECK(back.recovering_since == 12.5);
  CHECK(back.ramp_credit == 0.75);
  CHECK(LearnedFailureRate(back) == 0.25);
  CHECK(back.open_streak == 3);
  CHECK(back.stable_since == 99);
  CHECK(back.transitions == s.transitions);
  BreakerSnapshot damaged;
  DecodeBreakerStats(R"({"slow":"x","transitions":[[1,"closed","sideways"]],"timeouts":4})",
                     &damaged);
  CHECK(damaged.slow == 0);
  CHECK(damaged.transitions.empty());
  CHECK(damaged.timeouts == 4);
  DecodeBreakerStats("{}", &damaged);
  CHECK(damaged.timeouts == 4);
}

TEST_CASE("the new configuration round-trips through its JSON form") {
  BreakerConfig c;
  c.key = "svc";
  c.window_calls = 20;
  c.slow_seconds = 2.5;
  c.slow_rate = 0.4;
  c.ramp = 60;
  c.ramp_start = 0.2;
  c.adaptive = true;
  c.margin = 0.15;
  c.half_life = 500;
  c.stable = 120;
  BreakerConfig back = DecodeBreakerConfig(EncodeBreakerConfig(c));
  CHECK(back.window_calls == 20);
  CHECK(back.slow_seconds == 2.5);
  CHECK(back.slow_rate == 0.4);
  CHECK(back.ramp == 60);
  CHECK(back.ramp_start == 0.2);
  CHECK(back.adaptive);
  CHECK(back.margin == 0.15);
  CHECK(back.half_life == 500);
  CHECK(back.stable == 120);
}

}  // namespace keel
