// ProviderGate with a shared QuotaSource: rpm and tpm taken from a bucket
// shared with other gates (processes) in chunks, and the fallback to the
// local limit when the source fails. Fake clock and a fake source; no sleeps.

#include <doctest/doctest.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/fake_clock.h"
#include "engine/quota_source.h"
#include "nodes/provider_gate.h"

namespace keel {
namespace {

constexpr double kStart = 1000.0;

// A QuotaSource keeping its buckets in memory, timed by the fake clock; it
// answers at once, holds requests for the test to answer, or fails. One
// thread.
class FakeQuotaSource : public QuotaSource {
 public:
  enum class Mode { kAnswer, kHold, kFail, kFailForGood };
  struct Held {
    std::string key;
    double want = 0;
    std::function<void(Result<QuotaGrant>)> done;
  };

  explicit FakeQuotaSource(FakeClock* clock) : clock_(clock) {}

  void Take(const std::string& key, double want, double rate_per_s, double burst,
            std::function<void(Result<QuotaGrant>)> done) override {
    ++takes;
    wants.push_back(want);
    switch (mode) {
      case Mode::kHold:
        held.push_back({key, want, std::move(done)});
        return;
      case Mode::kFail:
        done(Status::Error(ErrorKind::kTransient, "database is locked"));
        return;
      case Mode::kFailForGood:
        done(Status::Error(ErrorKind::kPermanent, "not supported by this store"));
        return;
      case Mode::kAnswer:
        break;
    }
    done(Grant(key, want, rate_per_s, burst));
  }

  QuotaGrant Grant(const std::string& key, double want, double rate_per_s, double burst) {
    auto [it, fresh] = buckets.try_emplace(key);
    if (fresh) it->second = {burst, clock_->Now()};
    QuotaGrant grant = TakeFromBucket(&it->second.first, &it->second.second, want, rate_per_s,
                                      burst, clock_->Now());
    taken[key] += grant.taken;
    return grant;
  }

  Mode mode = Mode::kAnswer;
  int takes = 0;
  std::vector<double> wants;
  std::vector<Held> held;
  std::map<std::string, std::pair<double, double>> buckets;  // tokens, updated_at
  std::map<std::string, double> taken;

 private:
  FakeClock* clock_;
};

// The lanes of a database: slots held per lane and holder.
using Lanes = std::map<std::string, std::map<std::string, int>>;

// A QuotaSource of one process (`holder`) on shared `lanes`, answering at
// once with the store's arithmetic (no leases: the clock is not needed),
// or failing. Shares no rate limits. One thread.
class FakeLaneSource : public QuotaSource {
 public:
  FakeLaneSource(Lanes* lanes, std::string holder) : lanes_(lanes), holder_(std::move(holder)) {}

  void Take(const std::string&, double, double, double,
            std::function<void(Result<QuotaGrant>)> done) override {
    done(Status::Error(ErrorKind::kPermanent, "not here"));
  }
  void HoldSlots(const std::string& key, int want, int limit,
                 std::function<void(Result<int>)> done) override {
    ++holds;
    if (fail) return done(Status::Error(ErrorKind::kTransient, "database is locked"));
    int others = 0;
    for (const auto& [holder, held] : (*lanes_)[key]) {
      if (holder != holder_) others += held;
    }
    int held = SlotsGranted(want, limit, others);
    (*lanes_)[key][holder_] = held;
    done(held);
  }

  bool fail = false;
  int holds = 0;

 private:
  Lanes* lanes_;
  std::string holder_;
};

int Total(const Lanes& lanes, const std::string& key) {
  int total = 0;
  auto it = lanes.find(key);
  if (it == lanes.end()) return 0;
  for (const auto& [holder, held] : it->second) total += held;
  return total;
}

struct Counter {
  int admitted = 0;
  int failed = 0;
  std::function<void(Status)> Callback() {
    return [this](Status status) { status.ok() ? ++admitted : ++failed; };
  }
};

TEST_CASE("a shared rpm takes a chunk at a time, not a take per call" * doctest::timeout(30)) {
  FakeClock clock(kStart);
  auto source = std::make_shared<FakeQuotaSource>(&clock);
  ProviderGate gate(&clock, GateLimits{0, 600, 0}, SharedQuota{source, "provider:p"});
  Counter calls;
  for (int i = 0; i < 40; ++i) gate.Acquire(0, nullptr, 0, calls.Callback());
  // The shared bucket's burst (one second: 10), in chunks of a quarter second.
  CHECK(calls.admitted == 10);
  CHECK(source->takes <= 6);
  CHECK(source->buckets.count("provider:p:rpm") == 1);
  for (double want : source->wants) CHECK(want >= 2.5);
  int steps = 0;
  while (calls.admitted < 40 && clock.RunNext() && steps < 100000) {
    ++steps;
    CHECK(gate.rpm_level() <= 2.5 + 1e-9);  // at most one chunk held unused
  }
  CHECK(calls.admitted == 40);
  // 30 more at 10 a second.
  CHECK(clock.Now() - kStart == doctest::Approx(3.0).epsilon(0.05));
  // About one take per chunk of 2.5, far fewer than the 40 calls.
  CHECK(source->takes <= 20);
  CHECK(gate.TakeWarning().empty());
}

TEST_CASE("gates sharing a bucket admit no more than rate x window + burst together" *
          doctest::timeout(30)) {
  for (bool shared : {true, false}) {
    CAPTURE(shared);
    FakeClock clock(kStart);
    auto source = std::make_shared<FakeQuotaSource>(&clock);
    std::vector<Counter> calls(3);  // outlives the gates, which call it when they go
    std::vector<std::unique_ptr<ProviderGate>> gates;
    for (int g = 0; g < 3; ++g) {
      gates.push_back(std::make_unique<ProviderGate>(
          &clock, GateLimits{0, 600, 0},
          shared ? SharedQuota{source, "provider:p"} : SharedQuota{}));
      for (int i = 0; i < 200; ++i) gates[g]->Acquire(0, nullptr, 0, calls[g].Callback());
    }
    clock.Advance(10);
    const int total = calls[0].admitted + calls[1].admitted + calls[2].admitted;
    if (shared) {
      CHECK(total <= 10 * 10 + 10);                            // rate x window + burst
      CHECK(total >= 10 * 10 - 5);                             // and the rate is used, not starved
      for (const Counter& c : calls) CHECK(c.admitted >= 20);  // every process gets some
      CHECK(source->taken["provider:p:rpm"] <= 110 + 1e-9);
      // A few takes a second per gate (a chunk is a quarter second of the
      // rate), however many calls.
      CHECK(source->takes <= 3 * 5 * 10 + 10);
    } else {
      CHECK(total >= 3 * 100);  // each process spends the whole budget
      CHECK(source->takes == 0);
    }
  }
}

TEST_CASE("a shared tpm charges estimates and keeps at most a chunk of refunds") {
  FakeClock clock(kStart);
  auto source = std::make_shared<FakeQuotaSource>(&clock);
  // 60000 tpm: 1000 a second, burst 1000, chunks of 250.
  ProviderGate gate(&clock, GateLimits{0, 0, 60000}, SharedQuota{source, "provider:p"});
  Counter calls;
  gate.Acquire(800, nullptr, 0, calls.Callback());
  CHECK(calls.admitted == 1);
  CHECK(source->wants.at(0) == doctest::Approx(250));
  gate.Release(800, 100);  // 700 back
  CHECK(gate.tpm_level() <= 250 + 1e-9);
  gate.Acquire(5000, nullptr, 0, calls.Callback());
  CHECK(calls.admitted == 2);  // admitted while the level was above 0
  gate.Acquire(10, nullptr, 0, calls.Callback());
  CHECK(calls.admitted == 2);  // now in debt: waits for the shared bucket
  clock.Advance(6);
  CHECK(calls.admitted == 3);
  CHECK(source->taken["provider:p:tpm"] <= 1000 + 6 * 1000 + 1e-6);
}

TEST_CASE("a failing source falls back to the local limit, warns once, and asks again later") {
  FakeClock clock(kStart);
  auto source = std::make_shared<FakeQuotaSource>(&clock);
  source->mode = FakeQuotaSource::Mode::kFail;
  ProviderGate gate(&clock, GateLimits{0, 60, 0}, SharedQuota{source, "provider:p"});
  Counter calls;
  for (int i = 0; i < 30; ++i) gate.Acquire(0, nullptr, 0, calls.Callback());
  CHECK(source->takes == 1);
  std::string warning = gate.TakeWarning();
  CHECK(warning.find("provider:p:rpm") != std::string::npos);
  CHECK(warning.find("database is locked") != std::string::npos);
  CHECK(gate.TakeWarning().empty());  // once
  // The local limit: one a second, from an empty bucket.
  clock.Advance(5.5);
  CHECK(calls.admitted == 5);
  CHECK(source->takes == 1);
  // After the fallback period the gate asks again; still failing: no new
  // warning (nothing was shared in between), the local limit goes on.
  clock.Advance(kQuotaFallbackSeconds);
  CHECK(source->takes == 2);
  CHECK(gate.TakeWarning().empty());
  CHECK(calls.admitted == 15);
  // The database answers again: shared from then on.
  source->mode = FakeQuotaSource::Mode::kAnswer;
  clock.Advance(kQuotaFallbackSeconds);
  CHECK(source->takes > 2);
  CHECK(source->taken["provider:p:rpm"] > 0);
  CHECK(calls.admitted >= 24);
  CHECK(calls.admitted <= 26);
  CHECK(gate.rpm_level() <= 1 + 1e-9);
}

TEST_CASE("a source that does not answer in time is not waited for") {
  FakeClock clock(kStart);
  auto source = std::make_shared<FakeQuotaSource>(&clock);
  source->mode = FakeQuotaSource::Mode::kHold;
  auto gate = std::make_unique<ProviderGate>(&clock, GateLimits{0, 600, 0},
                                             SharedQuota{source, "provider:p"});
  Counter calls;
  for (int i = 0; i < 5; ++i) gate->Acquire(0, nullptr, 0, calls.Callback());
  CHECK(calls.admitted == 0);
  REQUIRE(source->held.size() == 1);
  clock.Advance(kQuotaAnswerTimeout - 0.01);
  CHECK(calls.admitted == 0);
  clock.Advance(0.02 + 0.1);  // timed out: the local limit, from empty, 10 a second
  CHECK(calls.admitted == 1);
  CHECK(gate->TakeWarning().find("did not answer") != std::string::npos);
  CHECK(source->held.size() == 1);  // no second take while the first is out
  // The late answer counts (it was taken from the shared bucket) and makes
  // the bucket shared again.
  auto late = std::move(source->held[0].done);
  source->held.clear();
  late(QuotaGrant{2.5, 0, 0});
  CHECK(calls.admitted == 3);
  // A gate gone before its take is answered ignores the answer.
  for (int i = 0; i < 5; ++i) gate->Acquire(0, nullptr, 0, calls.Callback());
  clock.Advance(0.5);
  REQUIRE(!source->held.empty());
  auto done = std::move(source->held.back().done);
  gate.reset();
  CHECK(calls.failed > 0);  // the waiting calls ended with kCancelled
  done(QuotaGrant{2.5, 0, 0});
}

TEST_CASE("a source that can never share leaves the local limit for good") {
  FakeClock clock(kStart);
  auto source = std::make_shared<FakeQuotaSource>(&clock);
  source->mode = FakeQuotaSource::Mode::kFailForGood;
  ProviderGate gate(&clock, GateLimits{0, 60, 60000}, SharedQuota{source, "provider:p"});
  Counter calls;
  for (int i = 0; i < 100; ++i) gate.Acquire(10, nullptr, 0, calls.Callback());
  CHECK(gate.TakeWarning().find("not supported") != std::string::npos);
  clock.Advance(60);
  CHECK(calls.admitted >= 59);
  CHECK(calls.admitted <= 61);
  CHECK(source->takes == 2);  // one per bucket, never again
}

TEST_CASE("gates sharing a concurrency lane never run more calls together than its limit" *
          doctest::timeout(30)) {
  FakeClock clock(kStart);
  Lanes lanes;
  const std::string key = "provider:p:concurrency";
  auto source_a = std::make_shared<FakeLaneSource>(&lanes, "a");
  auto source_b = std::make_shared<FakeLaneSource>(&lanes, "b");
  ProviderGate a(&clock, GateLimits{3, 0, 0}, SharedQuota{source_a, "provider:p"});
  ProviderGate b(&clock, GateLimits{3, 0, 0}, SharedQuota{source_b, "provider:p"});
  Counter calls_a, calls_b;
  for (int i = 0; i < 3; ++i) a.Acquire(0, nullptr, 0, calls_a.Callback());
  for (int i = 0; i < 3; ++i) b.Acquire(0, nullptr, 0, calls_b.Callback());
  CHECK(calls_a.admitted == 3);
  CHECK(calls_b.admitted == 0);  // a holds the lane's three slots
  CHECK(b.waiting() == 3);
  CHECK(Total(lanes, key) == 3);
  // b asks again every poll while the lane is full, not in a busy loop.
  for (int i = 0; i < 5; ++i) clock.RunNext();
  CHECK(calls_b.admitted == 0);
  CHECK(source_b->holds <= 6);

  // a's calls end: with none waiting it gives back the slots at once, and b
  // takes them at its next poll.
  a.Release(0, 0);
  a.Release(0, 0);
  CHECK(lanes[key]["a"] == 1);
  clock.Advance(0.2);
  CHECK(calls_b.admitted == 2);
  CHECK(a.in_flight() + b.in_flight() == 3);
  CHECK(Total(lanes, key) == 3);
  a.Release(0, 0);
  clock.Advance(0.2);
  CHECK(calls_b.admitted == 3);
  CHECK(lanes[key]["a"] == 0);
  for (int i = 0; i < 3; ++i) b.Release(0, 0);
  CHECK(Total(lanes, key) == 0);
  CHECK(a.TakeWarning().empty());
}

TEST_CASE("a held lane is renewed within its lease and given back when the gate goes" *
          doctest::timeout(30)) {
  FakeClock clock(kStart);
  Lanes lanes;
  const std::string key = "provider:p:concurrency";
  auto source = std::make_shared<FakeLaneSource>(&lanes, "a");
  {
    ProviderGate gate(&clock, GateLimits{2, 0, 0}, SharedQuota{source, "provider:p"});
    Counter calls;
    gate.Acquire(0, nullptr, 0, calls.Callback());
    gate.Acquire(0, nullptr, 0, calls.Callback());
    CHECK(calls.admitted == 2);
    const int asked = source->holds;
    // Two long calls: the hold is renewed every third of the lease.
    clock.Advance(kSlotLeaseSeconds * 2);
    CHECK(source->holds >= asked + 5);
    CHECK(lanes[key]["a"] == 2);
  }
  CHECK(lanes[key]["a"] == 0);
}

TEST_CASE("a lane the source cannot hold falls back to the process's own limit") {
  FakeClock clock(kStart);
  Lanes lanes;
  auto source = std::make_shared<FakeLaneSource>(&lanes, "a");
  source->fail = true;
  ProviderGate gate(&clock, GateLimits{2, 0, 0}, SharedQuota{source, "provider:p"});
  Counter calls;
  for (int i = 0; i < 3; ++i) gate.Acquire(0, nullptr, 0, calls.Callback());
  CHECK(calls.admitted == 2);  // the local limit
  CHECK(gate.TakeWarning().find("concurrency limit provider:p:concurrency is not shared") !=
        std::string::npos);
  CHECK(gate.TakeWarning().empty());  // once
  gate.Release(0, 0);
  CHECK(calls.admitted == 3);
}

}  // namespace
}  // namespace keel
