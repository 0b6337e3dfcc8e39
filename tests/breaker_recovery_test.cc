// The recovering state and the operator states of the breaker's state
// machine, on a hand-driven clock: the ramp's admitted share over time, what
// re-opens it during the ramp, forced open, disabled and closed by an
// operator, and the transitions they leave.

#include <doctest/doctest.h>

#include "tests/support/breaker_harness.h"

namespace keel {
namespace {

// Opens on one failure, probes after 10 s, ramps for 100 s from 10%.
Harness Ramping() {
  Harness h;
  h.config.failures = 1;
  h.config.cooldown = 10;
  h.config.ramp = 100;
  h.config.ramp_start = 0.1;
  return h;
}

// Opens the breaker and lets one probe succeed: RECOVERING from h.now.
void Recover(Harness& h) {
  h.Call(false);
  REQUIRE(h.snap.state == BreakerState::kOpen);
  h.now += h.config.cooldown;
  REQUIRE(h.Call(true) == Admission::kProbe);
  REQUIRE(h.snap.state == BreakerState::kRecovering);
  REQUIRE(h.last == BreakerTransition::kRecovering);
}

// `n` calls at h.now that succeed when admitted; returns how many were.
int Admitted(Harness& h, int n) {
  int admitted = 0;
  for (int k = 0; k < n; ++k) admitted += h.Call(true) == Admission::kAllowed;
  return admitted;
}

}  // namespace

TEST_CASE("successful probes start the ramp, which admits a share growing to 100%") {
  Harness h = Ramping();
  Recover(h);
  // The first call goes through, then one in ten.
  CHECK(Admitted(h, 100) == 10);
  h.now += 50;  // halfway: 10% + 90% / 2
  CHECK(RampShare(h.snap, h.config, h.now) == doctest::Approx(0.55));
  int admitted = Admitted(h, 200);
  CHECK(admitted >= 109);
  CHECK(admitted <= 111);
  h.now += 40;
  CHECK(RampShare(h.snap, h.config, h.now) == doctest::Approx(0.91));
  CHECK(h.snap.state == BreakerState::kRecovering);
  h.now += 10;  // the ramp is over: the next call closes it
  CHECK(h.Call(true) == Admission::kAllowed);
  CHECK(h.snap.state == BreakerState::kClosed);
  CHECK(h.last == BreakerTransition::kClosed);
  CHECK(Admitted(h, 50) == 50);
}

TEST_CASE("a call the ramp turns away fails fast and is counted as a rejection") {
  Harness h = Ramping();
  Recover(h);
  h.Call(true);  // the first call after the probes
  double retry_in = -1;
  CHECK(h.Peek(&retry_in) == Admission::kRejected);
  CHECK(retry_in == 0);
  CHECK(h.snap.rejected == 1);
}

TEST_CASE("consecutive failures during the ramp re-open it with the next cooldown") {
  Harness h = Ramping();
  h.config.failures = 2;
  h.Call(false);
  h.Call(false);
  h.now += 10;
  REQUIRE(h.Call(true) == Admission::kProbe);
  REQUIRE(h.snap.state == BreakerState::kRecovering);
  h.now += 90;  // 91% admitted: the next calls mostly go through
  CHECK(h.Call(false) == Admission::kAllowed);
  CHECK(h.snap.state == BreakerState::kRecovering);
  CHECK(h.Call(false) == Admission::kAllowed);
  CHECK(h.snap.state == BreakerState::kOpen);
  CHECK(h.last == BreakerTransition::kReopened);
  CHECK(h.snap.cooldown == doctest::Approx(20));
}

TEST_CASE("a failure rate over the threshold during the ramp re-opens it") {
  Harness h = Ramping();
  h.config.failures = 100;
  h.config.failure_rate = 0.5;
  h.config.min_calls = 4;
  h.config.window = 0;
  h.config.window_calls = 10;
  h.Call(false);
  // Opened by the rate: four calls, two of them failed.
  for (bool ok : {true, true, false}) h.Call(ok);
  REQUIRE(h.snap.state == BreakerState::kOpen);
  h.now += 10;
  REQUIRE(h.Call(true) == Admission::kProbe);
  REQUIRE(h.snap.state == BreakerState::kRecovering);
  CHECK(h.snap.recent.empty());  // the ramp judges its own calls
  h.now += 99;                   // nearly every call admitted
  for (bool ok : {true, false, true}) h.Call(ok);
  CHECK(h.snap.state == BreakerState::kRecovering);  // 1 of 3, under min_calls
  h.Call(false);                                      // 2 of 4
  CHECK(h.snap.state == BreakerState::kOpen);
  CHECK(h.last == BreakerTransition::kReopened);
}

TEST_CASE("without a rate of its own, the ramp re-opens at half its calls failing") {
  Harness h = Ramping();
  h.config.min_calls = 4;
  Recover(h);
  h.config.failures = 100;
  h.now += 99;
  for (bool ok : {false, true, false}) h.Call(ok);
  CHECK(h.snap.state == BreakerState::kRecovering);
  h.Call(true);
  CHECK(h.snap.state == BreakerState::kRecovering);  // 2 of 4 failed: still at 50%
  h.Call(false);                                     // 3 of 5
  CHECK(h.snap.state == BreakerState::kOpen);
}

TEST_CASE("a slow probe re-opens like a failed one") {
  Harness h = Ramping();
  h.config.slow_seconds = 2;
  h.config.slow_rate = 0.5;
  h.Call(false);
  h.now += 10;
  CHECK(h.Call(CallOutcome(true, 3, false)) == Admission::kProbe);
  CHECK(h.snap.state == BreakerState::kOpen);
  CHECK(h.last == BreakerTransition::kReopened);
  CHECK(h.snap.slow == 1);
}

TEST_CASE("forced open rejects every call and stays until closed") {
  Harness h;
  h.Call(true);
  CHECK(SetOperatorState(h.snap, BreakerState::kForcedOpen, h.now) ==
        BreakerTransition::kForcedOpen);
  CHECK(SetOperatorState(h.snap, BreakerState::kForcedOpen, h.now) == BreakerTransition::kNone);
  for (int k = 0; k < 5; ++k) {
    h.now += 1000;  // no cooldown ends it
    double retry_in = -1;
    CHECK(h.Peek(&retry_in) == Admission::kRejected);
    CHECK(retry_in == 0);
  }
  CHECK(h.snap.state == BreakerState::kForcedOpen);
  CHECK(h.snap.rejected == 5);
  // A call admitted before the order still counts when it reports.
  CHECK(RecordOutcome(h.snap, h.config, false, int64_t{0}, h.now) == BreakerTransition::kNone);
  CHECK(h.snap.failed == 1);
  CHECK(SetOperatorState(h.snap, BreakerState::kClosed, h.now) == BreakerTransition::kClosed);
  CHECK(h.Call(true) == Admission::kAllowed);
}

TEST_CASE("disabled admits every call, counts them, and never opens") {
  Harness h;
  h.config.failures = 2;
  h.config.failure_rate = 0.5;
  h.config.min_calls = 2;
  CHECK(SetOperatorState(h.snap, BreakerState::kDisabled, h.now) == BreakerTransition::kDisabled);
  for (int k = 0; k < 20; ++k) {
    CHECK(h.Call(CallOutcome(false, 1, true)) == Admission::kAllowed);
    h.now += 1;
  }
  CHECK(h.snap.state == BreakerState::kDisabled);
  CHECK(h.snap.calls == 20);
  CHECK(h.snap.failed == 20);
  CHECK(h.snap.timeouts == 20);
  CHECK(h.snap.consecutive_failures == 20);
  CHECK(h.snap.last_failure_at == doctest::Approx(h.now - 1));
  CHECK(HealthPercent(h.snap) == 0);
  // Closing hands it back to the failures: two more open it.
  CHECK(SetOperatorState(h.snap, BreakerState::kClosed, h.now) == BreakerTransition::kClosed);
  h.Call(false);
  h.Call(false);
  CHECK(h.snap.state == BreakerState::kOpen);
}

TEST_CASE("closing by hand ends an open breaker and forgives its opens in a row") {
  Harness h;
  h.config.failures = 1;
  h.config.adaptive = true;
  h.config.cooldown = 10;
  h.Call(false);
  h.now += 10;
  h.Call(false);  // failed probe: re-opened
  CHECK(h.snap.open_streak == 2);
  CHECK(Reopens(h.snap) == 1);
  CHECK(SetOperatorState(h.snap, BreakerState::kClosed, h.now) == BreakerTransition::kClosed);
  CHECK(h.snap.open_streak == 0);
  CHECK(h.snap.consecutive_failures == 0);
  h.Call(false);
  CHECK(h.snap.cooldown == doctest::Approx(10));
}

TEST_CASE("transitions are kept with their times, the latest twenty") {
  Harness h = Ramping();
  Recover(h);
  REQUIRE(h.snap.transitions.size() == 3);
  CHECK(h.snap.transitions[0] == BreakerChange{1000, BreakerState::kClosed, BreakerState::kOpen});
  CHECK(h.snap.transitions[1] ==
        BreakerChange{1010, BreakerState::kOpen, BreakerState::kHalfOpen});
  CHECK(h.snap.transitions[2] ==
        BreakerChange{1010, BreakerState::kHalfOpen, BreakerState::kRecovering});
  for (int k = 0; k < 30; ++k) {
    h.now += 1;
    SetOperatorState(h.snap, k % 2 ? BreakerState::kDisabled : BreakerState::kForcedOpen, h.now);
  }
  CHECK(h.snap.transitions.size() == 20);
  CHECK(h.snap.transitions.back().at == doctest::Approx(h.now));
  CHECK(h.snap.transitions.back().to == BreakerState::kDisabled);
}

TEST_CASE("statistics: successes and failures in a row, last times, timeouts") {
  Harness h;
  h.config.failures = 10;
  h.Call(true);
  h.now += 1;
  h.Call(true);
  CHECK(h.snap.consecutive_successes == 2);
  CHECK(h.snap.last_success_at == doctest::Approx(1001));
  h.now += 1;
  h.Call(CallOutcome(false, 5, true));
  CHECK(h.snap.consecutive_successes == 0);
  CHECK(h.snap.consecutive_failures == 1);
  CHECK(h.snap.timeouts == 1);
  CHECK(h.snap.slow == 0);  // no slow-call rule: nothing is slow
  CHECK(h.snap.last_failure_at == doctest::Approx(1002));
  CHECK(h.snap.calls == 3);
  CHECK(h.snap.failed == 1);
}

}  // namespace keel
