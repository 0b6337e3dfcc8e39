#include "tests/support/breaker_harness.h"

#include <doctest/doctest.h>

#include <random>
#include <set>
#include <vector>

namespace keel {

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
  ProbeClaim a = h.Claim(), b = h.Claim(), c = h.Claim();
  CHECK(Admit(h.snap, h.config, h.now, a, &retry_in, &t) == Admission::kProbe);
  CHECK(t == BreakerTransition::kHalfOpened);
  CHECK(Admit(h.snap, h.config, h.now, b, &retry_in, &t) == Admission::kProbe);
  CHECK(Admit(h.snap, h.config, h.now, c, &retry_in, &t) == Admission::kRejected);
  CHECK(h.snap.probes.size() == 2);
  CHECK(RecordOutcome(h.snap, h.config, true, a.id, h.now) == BreakerTransition::kNone);
  CHECK(RecordOutcome(h.snap, h.config, true, b.id, h.now) == BreakerTransition::kClosed);
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
  h.Call(false);                                 // 3 of 4 failed
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

TEST_CASE("a running probe keeps its slot past the cooldown while its lease is renewed") {
  Harness h;
  h.config.failures = 1;
  h.config.cooldown = 1;
  h.config.probes = 1;
  h.lease = 10;
  h.Call(false);
  h.now += 1;
  double retry_in;
  int64_t probe = 0;
  REQUIRE(h.Peek(&retry_in, &probe) == Admission::kProbe);
  // The probe runs for 100 s, renewed every 3 s: nobody else gets a slot.
  for (int i = 0; i < 33; ++i) {
    h.now += 3;
    CHECK(RenewProbe(h.snap, probe, h.now));
    CHECK(h.Peek(&retry_in) == Admission::kRejected);
    CHECK(retry_in == doctest::Approx(1));
    CHECK(h.snap.probes.size() == 1);
  }
  CHECK(h.snap.probes[0].started_at == doctest::Approx(1001));
  CHECK(h.snap.probes[0].renewed_at == doctest::Approx(h.now));
  CHECK(RecordOutcome(h.snap, h.config, true, probe, h.now) == BreakerTransition::kClosed);
  CHECK(h.snap.probes.empty());
  CHECK_FALSE(RenewProbe(h.snap, probe, h.now));  // nothing left to renew
}

TEST_CASE("a probe that is not renewed loses its slot after the lease") {
  Harness h;
  h.config.failures = 1;
  h.config.cooldown = 5;
  h.lease = 10;
  h.Call(false);
  h.now += 5;
  double retry_in;
  int64_t lost = 0;
  CHECK(h.Peek(&retry_in, &lost) == Admission::kProbe);  // never renewed, never reported
  h.now += 10;
  CHECK(h.Peek(&retry_in) == Admission::kRejected);  // exactly the lease: still held
  h.now += 0.5;
  int64_t next = 0;
  CHECK(h.Peek(&retry_in, &next) == Admission::kProbe);
  REQUIRE(h.snap.probes.size() == 1);
  CHECK(h.snap.probes[0].id == next);
  // The lost probe reports late: it no longer counts as a probe.
  CHECK(RecordOutcome(h.snap, h.config, false, lost, h.now) == BreakerTransition::kNone);
  CHECK(h.snap.state == BreakerState::kHalfOpen);
  CHECK(RecordOutcome(h.snap, h.config, true, next, h.now) == BreakerTransition::kClosed);
}

TEST_CASE("a probe whose owner died frees its slot at once") {
  Harness h;
  h.config.failures = 1;
  h.config.cooldown = 5;
  h.config.probes = 2;
  h.Call(false);
  h.now += 5;
  double retry_in;
  int64_t first = 0, second = 0;
  REQUIRE(h.Peek(&retry_in, &first) == Admission::kProbe);
  REQUIRE(h.Peek(&retry_in, &second) == Admission::kProbe);
  CHECK(h.Peek(&retry_in) == Admission::kRejected);
  h.dead.insert(first);
  int64_t third = 0;
  CHECK(h.Peek(&retry_in, &third) == Admission::kProbe);
  CHECK(h.Peek(&retry_in) == Admission::kRejected);
  REQUIRE(h.snap.probes.size() == 2);
  CHECK(h.snap.probes[0].id == second);
  CHECK(h.snap.probes[1].id == third);
}

TEST_CASE("a released probe frees its slot without an outcome") {
  Harness h;
  h.config.failures = 1;
  h.config.cooldown = 5;
  h.Call(false);
  h.now += 5;
  double retry_in;
  int64_t probe = 0;
  REQUIRE(h.Peek(&retry_in, &probe) == Admission::kProbe);
  CHECK(h.Peek(&retry_in) == Admission::kRejected);
  CHECK(ReleaseProbe(h.snap, probe));
  CHECK_FALSE(ReleaseProbe(h.snap, probe));
  CHECK(h.snap.calls == 1);
  CHECK(h.snap.state == BreakerState::kHalfOpen);
  CHECK(h.Peek(&retry_in) == Admission::kProbe);
}

TEST_CASE("probes never exceed the bound, whatever the order of admits, renewals and reports") {
  // Random interleavings of several owners; the slot count is checked after
  // every step.
  for (int probes : {1, 2, 3}) {
    CAPTURE(probes);
    Harness h;
    h.config.failures = 1;
    h.config.cooldown = 1;
    h.config.probes = probes;
    h.config.successes = 1000;  // stays half-open
    h.lease = 5;
    h.Call(false);
    h.now += 1;
    std::mt19937 rng(probes);
    std::vector<int64_t> running;
    for (int step = 0; step < 5000; ++step) {
      int action = static_cast<int>(rng() % 4);
      double retry_in;
      int64_t id = 0;
      if (action == 0 && h.Peek(&retry_in, &id) == Admission::kProbe) running.push_back(id);
      if (action == 1 && !running.empty()) {
        size_t k = rng() % running.size();
        RecordOutcome(h.snap, h.config, true, running[k], h.now);
        running.erase(running.begin() + static_cast<long>(k));
      }
      if (action == 2) {
        for (int64_t r : running) RenewProbe(h.snap, r, h.now);
      }
      h.now += 0.5;
      REQUIRE(static_cast<int>(h.snap.probes.size()) <= probes);
    }
  }
}

TEST_CASE("state names round-trip") {
  for (BreakerState s : {BreakerState::kClosed, BreakerState::kOpen, BreakerState::kHalfOpen}) {
    BreakerState back;
    REQUIRE(ParseBreakerState(BreakerStateName(s), &back));
    CHECK(back == s);
  }
}

}  // namespace keel
