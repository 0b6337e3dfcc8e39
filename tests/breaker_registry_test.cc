// BreakerRegistry's probe leases: renewed on the clock while a probe runs,
// freed when it reports, is released, or its owner is gone. Two registries
// on one store stand for two processes on one database.

#include "engine/breaker_registry.h"

#include <doctest/doctest.h>

#include <functional>
#include <set>
#include <vector>

#include "engine/fake_clock.h"
#include "tests/fakes/memory_store.h"

namespace keel {
namespace {

constexpr int kTimeoutS = 30;

BreakerConfig SlowProbeConfig() {
  BreakerConfig c;
  c.key = "svc";
  c.failures = 1;
  c.cooldown = 1;
  c.probes = 1;
  return c;
}

// Two "processes" (owners 101 and 202) sharing `store`; `dead` holds the
// pids that have died.
struct Pair {
  testing::MemoryStore store;
  FakeClock clock{0.0};
  std::set<int64_t> dead;
  BreakerRegistry a{&store, Options(101)};
  BreakerRegistry b{&store, Options(202)};

  BreakerRegistry::Options Options(int64_t pid) {
    BreakerRegistry::Options o;
    o.lease = 10;
    o.renew_every = 3;
    o.owner = Owner{pid, "host", 1};
    o.alive = [this](const ProbeLease& p, double) { return dead.count(p.owner.pid) == 0; };
    return o;
  }
  double Wall() { return clock.WallNow(); }
  // Opens the breaker and lets its cooldown pass.
  void OpenAndCool(const BreakerConfig& c) {
    REQUIRE(a.Admit(c, Wall()).admission == Admission::kAllowed);
    REQUIRE(a.Record(c, false, 0, Wall()) == BreakerTransition::kOpened);
    clock.Advance(c.cooldown);
  }
  BreakerSnapshot Stored() {
    auto rows = store.ListBreakers();
    REQUIRE(rows.ok());
    REQUIRE(rows->size() == 1);
    return (*rows)[0].snapshot;
  }
};

}  // namespace

TEST_CASE("a probe slower than the cooldown keeps its slot while its lease is renewed" *
          doctest::timeout(kTimeoutS)) {
  Pair p;
  BreakerConfig c = SlowProbeConfig();
  p.OpenAndCool(c);
  auto probe = p.a.Admit(c, p.Wall(), BreakerRegistry::Renewer{&p.clock, nullptr});
  REQUIRE(probe.admission == Admission::kProbe);
  CHECK(probe.transition == BreakerTransition::kHalfOpened);
  CHECK(probe.probe != 0);
  CHECK(p.a.renewing() == 1);
  // The probe runs for 60 s, far past the cooldown and the 10 s lease.
  for (int s = 0; s < 60; ++s) {
    p.clock.Advance(1);
    CHECK(p.b.Admit(c, p.Wall()).admission == Admission::kRejected);
    CHECK(p.a.Admit(c, p.Wall()).admission == Admission::kRejected);
  }
  BreakerSnapshot held = p.Stored();
  REQUIRE(held.probes.size() == 1);
  CHECK(held.probes[0].owner.pid == 101);
  CHECK(held.probes[0].renewed_at >= p.Wall() - 3);
  CHECK(held.probes[0].started_at == doctest::Approx(p.Wall() - 60));

  CHECK(p.a.Record(c, true, probe.probe, p.Wall()) == BreakerTransition::kClosed);
  CHECK(p.a.renewing() == 0);
  CHECK(p.clock.pending() == 0);  // no renewal left scheduled
  CHECK(p.Stored().probes.empty());
}

TEST_CASE("the next probe goes as soon as the running one reports" * doctest::timeout(kTimeoutS)) {
  Pair p;
  BreakerConfig c = SlowProbeConfig();
  c.successes = 2;
  p.OpenAndCool(c);
  auto first = p.a.Admit(c, p.Wall(), BreakerRegistry::Renewer{&p.clock, nullptr});
  REQUIRE(first.admission == Admission::kProbe);
  p.clock.Advance(5);
  CHECK(p.b.Admit(c, p.Wall()).admission == Admission::kRejected);
  CHECK(p.a.Record(c, true, first.probe, p.Wall()) == BreakerTransition::kNone);
  auto second = p.b.Admit(c, p.Wall(), BreakerRegistry::Renewer{&p.clock, nullptr});
  REQUIRE(second.admission == Admission::kProbe);
  CHECK(p.a.Admit(c, p.Wall()).admission == Admission::kRejected);
  CHECK(p.b.Record(c, true, second.probe, p.Wall()) == BreakerTransition::kClosed);
}

TEST_CASE("a probe whose process died frees its slot" * doctest::timeout(kTimeoutS)) {
  Pair p;
  BreakerConfig c = SlowProbeConfig();
  p.OpenAndCool(c);
  REQUIRE(p.a.Admit(c, p.Wall(), BreakerRegistry::Renewer{&p.clock, nullptr}).admission ==
          Admission::kProbe);
  p.clock.Advance(1);
  CHECK(p.b.Admit(c, p.Wall()).admission == Admission::kRejected);
  p.dead.insert(101);  // its renewals stop with it in reality; the pid check comes first
  auto taken = p.b.Admit(c, p.Wall());
  CHECK(taken.admission == Admission::kProbe);
  BreakerSnapshot s = p.Stored();
  REQUIRE(s.probes.size() == 1);
  CHECK(s.probes[0].owner.pid == 202);
  // The first probe's renewal finds its slot gone and stops.
  p.clock.Advance(3);
  CHECK(p.clock.pending() == 0);
}

TEST_CASE("a probe that is not renewed frees its slot after the lease" *
          doctest::timeout(kTimeoutS)) {
  Pair p;
  BreakerConfig c = SlowProbeConfig();
  p.OpenAndCool(c);
  REQUIRE(p.a.Admit(c, p.Wall()).admission == Admission::kProbe);  // no renewer: a hung process
  p.clock.Advance(10);
  CHECK(p.b.Admit(c, p.Wall()).admission == Admission::kRejected);
  p.clock.Advance(0.5);
  CHECK(p.b.Admit(c, p.Wall()).admission == Admission::kProbe);
}

TEST_CASE("an abandoned probe is released; a late renewal cannot bring it back" *
          doctest::timeout(kTimeoutS)) {
  Pair p;
  BreakerConfig c = SlowProbeConfig();
  p.OpenAndCool(c);
  // Renewals are posted; the test runs them when it likes.
  std::vector<std::function<void()>> posted;
  BreakerRegistry::Renewer renewer{
      &p.clock, [&](std::function<void()> fn) { posted.push_back(std::move(fn)); }};
  auto probe = p.a.Admit(c, p.Wall(), renewer);
  REQUIRE(probe.admission == Admission::kProbe);
  double admitted_at = p.Wall();
  p.clock.Advance(3);
  REQUIRE(posted.size() == 1);
  CHECK(p.Stored().probes[0].renewed_at == admitted_at);  // not written until run
  posted[0]();
  CHECK(p.Stored().probes[0].renewed_at == doctest::Approx(admitted_at + 3));
  p.clock.Advance(3);
  REQUIRE(posted.size() == 2);
  p.a.Release(c, probe.probe);
  CHECK(p.a.renewing() == 0);
  posted[1]();  // too late: stopped
  BreakerSnapshot s = p.Stored();
  CHECK(s.probes.empty());
  CHECK(s.state == BreakerState::kHalfOpen);
  CHECK(s.calls == 1);  // the abandoned call is not counted
  CHECK(p.clock.pending() == 0);
  CHECK(p.b.Admit(c, p.Wall()).admission == Admission::kProbe);
}

TEST_CASE("destroying the registry stops its renewals" * doctest::timeout(kTimeoutS)) {
  testing::MemoryStore store;
  FakeClock clock{0.0};
  BreakerConfig c = SlowProbeConfig();
  {
    BreakerRegistry r(&store);
    REQUIRE(r.Admit(c, clock.WallNow()).admission == Admission::kAllowed);
    r.Record(c, false, 0, clock.WallNow());
    clock.Advance(1);
    REQUIRE(r.Admit(c, clock.WallNow(), BreakerRegistry::Renewer{&clock, nullptr}).admission ==
            Admission::kProbe);
    CHECK(clock.pending() == 1);
  }
  CHECK(clock.pending() == 0);
  clock.Advance(100);  // nothing fires into the destroyed registry
}

TEST_CASE("without a store, probes are bounded in this process" * doctest::timeout(kTimeoutS)) {
  FakeClock clock{0.0};
  BreakerRegistry r(nullptr);
  BreakerConfig c = SlowProbeConfig();
  r.Record(c, false, 0, clock.WallNow());
  clock.Advance(1);
  auto probe = r.Admit(c, clock.WallNow(), BreakerRegistry::Renewer{&clock, nullptr});
  REQUIRE(probe.admission == Admission::kProbe);
  for (int s = 0; s < 100; ++s) {
    clock.Advance(1);
    CHECK(r.Admit(c, clock.WallNow()).admission == Admission::kRejected);
  }
  CHECK(r.Record(c, true, probe.probe, clock.WallNow()) == BreakerTransition::kClosed);
}

}  // namespace keel
