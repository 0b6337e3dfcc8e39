#include <doctest/doctest.h>

#include "engine/circuit_breaker.h"

namespace keel {
namespace {

struct Harness {
  BreakerConfig config;
  BreakerSnapshot snap;
  double now = 1000;
  BreakerTransition last = BreakerTransition::kNone;

  Admission Call(bool success) {
    double retry_in;
    BreakerTransition t;
    Admission a = Admit(snap, config, now, &retry_in, &t);
    if (t != BreakerTransition::kNone) last = t;
    if (a != Admission::kRejected) {
      t = RecordOutcome(snap, config, success, a == Admission::kProbe, now);
      if (t != BreakerTransition::kNone) last = t;
    }
    return a;
  }
  Admission Peek(double* retry_in) {
    BreakerTransition t;
    return Admit(snap, config, now, retry_in, &t);
  }
};

}  // namespace

TEST_CASE("consecutive failures open the breaker; a success resets the count") {
  Harness h;
  h.config.failures = 3;
  h.Call(false);
  h.Call(false);
  h.Call(true);
  CHECK(h.snap.state == BreakerState::kClosed);
  h.Call(false);
  h.Call(false);
  CHECK(h.snap.state == BreakerState::kClosed);
  h.Call(false);
  CHECK(h.snap.state == BreakerState::kOpen);
  CHECK(h.last == BreakerTransition::kOpened);
}

TEST_CASE("open rejects until the cooldown, then half-opens for `probes` calls") {
  Harness h;
  h.config.failures = 1;
  h.config.cooldown = 10;
  h.config.probes = 2;
  h.config.successes = 2;
  h.Call(false);
  double retry_in = 0;
  h.now += 4;
  CHECK(h.Peek(&retry_in) == Admission::kRejected);
  CHECK(retry_in == doctest::Approx(6));
  h.now += 6;
  BreakerTransition t;
  CHECK(Admit(h.snap, h.config, h.now, &retry_in, &t) == Admission::kProbe);
  CHECK(t == BreakerTransition::kHalfOpened);
  CHECK(Admit(h.snap, h.config, h.now, &retry_in, &t) == Admission::kProbe);
  CHECK(Admit(h.snap, h.config, h.now, &retry_in, &t) == Admission::kRejected);
  CHECK(RecordOutcome(h.snap, h.config, true, true, h.now) == BreakerTransition::kNone);
  CHECK(RecordOutcome(h.snap, h.config, true, true, h.now) == BreakerTransition::kClosed);
  CHECK(h.snap.state == BreakerState::kClosed);
  CHECK(h.Call(true) == Admission::kAllowed);
}

TEST_CASE("a failed probe re-opens with the cooldown times factor, capped") {
  Harness h;
  h.config.failures = 1;
  h.config.cooldown = 10;
  h.config.factor = 3;
  h.config.max_cooldown = 50;
  h.Call(false);
  CHECK(h.snap.cooldown == doctest::Approx(10));
  h.now += 10;
  CHECK(h.Call(false) == Admission::kProbe);
  CHECK(h.last == BreakerTransition::kReopened);
  CHECK(h.snap.cooldown == doctest::Approx(30));
  h.now += 30;
  h.Call(false);
  CHECK(h.snap.cooldown == doctest::Approx(50));
  h.now += 50;
  h.Call(true);
  CHECK(h.snap.state == BreakerState::kClosed);
  h.Call(false);
  CHECK(h.snap.cooldown == doctest::Approx(10));
}

TEST_CASE("failure rate over a window opens the breaker") {
  Harness h;
  h.config.failures = 100;
  h.config.failure_rate = 0.5;
  h.config.window = 10;
  h.config.min_calls = 4;
  h.Call(false);
  h.Call(true);
  h.Call(false);
  CHECK(h.snap.state == BreakerState::kClosed);  // 3 calls < min_calls
  h.Call(false);                                  // 3 of 4 failed
  CHECK(h.snap.state == BreakerState::kOpen);
}

TEST_CASE("old outcomes leave the rate window") {
  Harness h;
  h.config.failures = 100;
  h.config.failure_rate = 0.5;
  h.config.window = 10;
  h.config.min_calls = 2;
  h.Call(false);
  h.now += 20;
  h.Call(true);
  h.Call(true);
  h.Call(false);
  CHECK(h.snap.state == BreakerState::kClosed);  // 1 of 3 in the window
  CHECK(HealthPercent(h.snap) == doctest::Approx(100.0 * 2 / 3));
}

TEST_CASE("a probe that never reports loses its lease after a cooldown") {
  Harness h;
  h.config.failures = 1;
  h.config.cooldown = 5;
  h.Call(false);
  h.now += 5;
  double retry_in;
  CHECK(h.Peek(&retry_in) == Admission::kProbe);  // never reported
  CHECK(h.Peek(&retry_in) == Admission::kRejected);
  h.now += 6;
  CHECK(h.Peek(&retry_in) == Admission::kProbe);
}

TEST_CASE("state names round-trip") {
  for (BreakerState s : {BreakerState::kClosed, BreakerState::kOpen, BreakerState::kHalfOpen}) {
    BreakerState back;
    REQUIRE(ParseBreakerState(BreakerStateName(s), &back));
    CHECK(back == s);
  }
}

}  // namespace keel
