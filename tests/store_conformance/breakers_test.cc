// Circuit breakers shared through the store: read-modify-write in one
// transaction (never a lost update across stores and threads), every field
// of a snapshot kept, listing by key and resetting.

#include <thread>
#include <vector>

#include "engine/fake_clock.h"
#include "tests/store_conformance/conformance.h"

namespace keel::conformance {
namespace {

KEEL_CONFORMANCE_SUITE;

TEST_CASE("a breaker is read, modified, written back, listed and reset" * doctest::timeout(60)) {
  KEEL_FRESH_BACKEND(db);
  FakeClock clock(0, 5000);
  StoreOptions options;
  options.clock = &clock;
  auto store = db->Open(options);
  auto first = store->UpdateBreaker("llm", [](BreakerSnapshot& s) {
    CHECK(s.state == BreakerState::kClosed);
    CHECK(s.calls == 0);
    CHECK(s.probes.empty());
    s.state = BreakerState::kHalfOpen;
    s.consecutive_failures = 5;
    s.probe_successes = 2;
    s.opened_at = 4990.5;
    s.cooldown = 60;
    s.probes = {ProbeLease{7, Owner{123, "host-a", 456}, 4999.25, 4999.5},
                ProbeLease{8, Owner{124, "host-b", 457}, 4999.75, 4999.875}};
    s.calls = 10;
    s.failed = 6;
    s.recent = {{4990.5, 1}, {4991.75, 0}};
    s.config.key = "llm";
    s.config.failures = 3;
    s.config.failure_rate = 0.25;
    s.config.window = 90.5;
    s.config.min_calls = 7;
    s.config.cooldown = 12.5;
    s.config.factor = 1.5;
    s.config.max_cooldown = 300;
    s.config.probes = 2;
    s.config.successes = 3;
  });
  REQUIRE_MESSAGE(first.ok(), first.status().ToString());
  CHECK(first->calls == 10);
  REQUIRE(store->UpdateBreaker("a-first", [](BreakerSnapshot& s) { s.calls = 1; }).ok());

  // Another store reads what the first wrote.
  auto other = db->OpenSecond(options);
  auto again = other->UpdateBreaker("llm", [](BreakerSnapshot& s) { s.calls += 1; });
  REQUIRE_OK(again);
  CHECK(again->calls == 11);
  CHECK(again->state == BreakerState::kHalfOpen);
  CHECK(again->recent == std::deque<WindowCall>{{4990.5, 1}, {4991.75, 0}});

  auto rows = Must(store->ListBreakers());
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].key == "a-first");  // by key
  const BreakerRow& llm = rows[1];
  CHECK(llm.key == "llm");
  CHECK(llm.updated_at == 5000);
  CHECK(llm.snapshot.state == BreakerState::kHalfOpen);
  CHECK(llm.snapshot.consecutive_failures == 5);
  CHECK(llm.snapshot.probe_successes == 2);
  CHECK(llm.snapshot.opened_at == 4990.5);
  CHECK(llm.snapshot.cooldown == 60);
  CHECK(llm.snapshot.calls == 11);
  CHECK(llm.snapshot.failed == 6);
  REQUIRE(llm.snapshot.probes.size() == 2);
  const ProbeLease& probe = llm.snapshot.probes[0];
  CHECK(probe.id == 7);
  CHECK(probe.owner.pid == 123);
  CHECK(probe.owner.host == "host-a");
  CHECK(probe.owner.start_ticks == 456);
  CHECK(probe.started_at == 4999.25);
  CHECK(probe.renewed_at == 4999.5);
  CHECK(llm.snapshot.probes[1].id == 8);
  CHECK(llm.snapshot.probes[1].renewed_at == 4999.875);
  CHECK(llm.snapshot.recent.size() == 2);
  const BreakerConfig& config = llm.snapshot.config;
  CHECK(config.key == "llm");
  CHECK(config.failures == 3);
  CHECK(config.failure_rate == 0.25);
  CHECK(config.window == 90.5);
  CHECK(config.min_calls == 7);
  CHECK(config.cooldown == 12.5);
  CHECK(config.factor == 1.5);
  CHECK(config.max_cooldown == 300);
  CHECK(config.probes == 2);
  CHECK(config.successes == 3);

  CHECK(Must(store->ResetBreakers("llm")) == 1);
  CHECK(Must(store->ResetBreakers("llm")) == 0);
  auto fresh = other->UpdateBreaker("llm", [](BreakerSnapshot& s) {
    CHECK(s.calls == 0);  // reset means closed and empty
    CHECK(s.state == BreakerState::kClosed);
  });
  REQUIRE_OK(fresh);
  REQUIRE_OK(store->UpdateBreaker("third", [](BreakerSnapshot&) {}));
  CHECK(Must(store->ResetBreakers("")) == 3);
  CHECK(Must(other->ListBreakers()).empty());
}

TEST_CASE("breaker updates from two stores and several threads are never lost" *
          doctest::timeout(180)) {
  KEEL_FRESH_BACKEND(db);
  auto a = db->Open();
  auto b = db->OpenSecond();
  Create(*a, "run");
  constexpr int kThreads = 4;
  constexpr int kUpdates = 100;
  std::vector<std::thread> workers;
  std::vector<int> failures(kThreads, 0);
  for (int t = 0; t < kThreads; ++t) {
    Store* store = t % 2 ? a.get() : b.get();
    workers.emplace_back([store, t, &failures] {
      for (int i = 0; i < kUpdates; ++i) {
        // Queued writes interleaved: the update must not wait for them.
        store->SaveNode(MakeNode("run", std::to_string(t) + "/" + std::to_string(i)));
        auto result = store->UpdateBreaker("shared", [](BreakerSnapshot& s) {
          ++s.calls;
          s.recent.push_back({static_cast<double>(s.calls), 1});
        });
        if (!result.ok()) ++failures[t];
      }
    });
  }
  for (auto& w : workers) w.join();
  Flushed(*a);
  Flushed(*b);
  CHECK(failures == std::vector<int>(kThreads, 0));
  auto rows = Must(a->ListBreakers());
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].snapshot.calls == kThreads * kUpdates);
  CHECK(rows[0].snapshot.recent.size() == static_cast<size_t>(kThreads * kUpdates));
  CHECK(Must(a->GetNodes("run")).size() == static_cast<size_t>(kThreads * kUpdates));
}

}  // namespace
}  // namespace keel::conformance
