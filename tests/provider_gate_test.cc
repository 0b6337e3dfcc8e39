#include "nodes/provider_gate.h"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "engine/fake_clock.h"

namespace keel {
namespace {

constexpr double kStart = 1000.0;

// Records when and how one Acquire ended.
struct Admission {
  std::optional<Status> status;
  double at = -1;
  int order = -1;
};

struct Recorder {
  explicit Recorder(FakeClock* c) : clock(c) {}

  FakeClock* clock;
  int next_order = 0;
  std::vector<std::unique_ptr<Admission>> calls;

  std::function<void(Status)> Callback() {
    calls.push_back(std::make_unique<Admission>());
    Admission* call = calls.back().get();
    return [this, call](Status status) {
      call->status = std::move(status);
      call->at = clock->Now() - kStart;
      call->order = next_order++;
    };
  }
};

TEST_CASE("60 rpm spreads 120 calls queued at once over two minutes, in order") {
  FakeClock clock(kStart);
  auto gate = std::make_shared<ProviderGate>(&clock, GateLimits{0, 60, 0});
  Recorder rec(&clock);
  for (int i = 0; i < 120; ++i) gate->Acquire(0, nullptr, 0, rec.Callback());
  CHECK(gate->in_flight() == 1);
  CHECK(gate->waiting() == 119);
  int steps = 0;
  while (clock.RunNext() && steps < 10000) ++steps;
  CHECK(gate->waiting() == 0);
  CHECK(gate->in_flight() == 120);
  for (int i = 0; i < 120; ++i) {
    const Admission& call = *rec.calls[i];
    REQUIRE(call.status.has_value());
    CHECK(call.status->ok());
    CHECK(call.order == i);
    CHECK(call.at == doctest::Approx(i).epsilon(0.001));
  }
  CHECK(rec.calls.back()->at >= 118.9);
  CHECK(rec.calls.back()->at <= 120.0);
  CHECK(clock.pending() == 0);
}

TEST_CASE("a high rpm admits a burst of one second's worth, then smooths") {
  FakeClock clock(kStart);
  ProviderGate gate(&clock, GateLimits{0, 600, 0});  // 10 a second
  Recorder rec(&clock);
  for (int i = 0; i < 20; ++i) gate.Acquire(0, nullptr, 0, rec.Callback());
  CHECK(gate.in_flight() == 10);
  clock.Advance(0.55);
  CHECK(gate.in_flight() == 15);
  clock.Advance(0.5);
  CHECK(gate.in_flight() == 20);
  CHECK(rec.calls[19]->at == doctest::Approx(1.0).epsilon(0.001));
}

TEST_CASE("max_concurrency holds the third call until a Release") {
  FakeClock clock(kStart);
  ProviderGate gate(&clock, GateLimits{2, 0, 0});
  Recorder rec(&clock);
  for (int i = 0; i < 3; ++i) gate.Acquire(0, nullptr, 0, rec.Callback());
  CHECK(rec.calls[0]->status.has_value());
  CHECK(rec.calls[1]->status.has_value());
  CHECK_FALSE(rec.calls[2]->status.has_value());
  CHECK(gate.waiting() == 1);
  CHECK(clock.pending() == 0);  // nothing to time: only a Release frees a slot
  clock.Advance(100);
  CHECK_FALSE(rec.calls[2]->status.has_value());
  gate.Release(0, 0);
  REQUIRE(rec.calls[2]->status.has_value());
  CHECK(rec.calls[2]->status->ok());
  CHECK(gate.in_flight() == 2);
  CHECK(gate.waiting() == 0);
}

TEST_CASE("a waiting call is never overtaken by a later one that would fit") {
  FakeClock clock(kStart);
  ProviderGate gate(&clock, GateLimits{1, 0, 0});
  Recorder rec(&clock);
  gate.Acquire(0, nullptr, 0, rec.Callback());
  gate.Acquire(0, nullptr, 0, rec.Callback());
  gate.Release(0, 0);  // admits the waiter, not a newcomer
  gate.Acquire(0, nullptr, 0, rec.Callback());
  CHECK(rec.calls[1]->status.has_value());
  CHECK_FALSE(rec.calls[2]->status.has_value());
  gate.Release(0, 0);
  CHECK(rec.calls[2]->status.has_value());
}

TEST_CASE("tpm: a big call drives the bucket negative and the next waits for the refill") {
  FakeClock clock(kStart);
  ProviderGate gate(&clock, GateLimits{0, 0, 6000});  // 100 tokens a second, holds 100
  Recorder rec(&clock);
  gate.Acquire(500, nullptr, 0, rec.Callback());  // bucket 100 -> -400
  gate.Acquire(10, nullptr, 0, rec.Callback());
  CHECK(rec.calls[0]->status.has_value());
  CHECK_FALSE(rec.calls[1]->status.has_value());
  clock.Advance(3.9);
  CHECK_FALSE(rec.calls[1]->status.has_value());
  clock.Advance(0.2);
  REQUIRE(rec.calls[1]->status.has_value());
  CHECK(rec.calls[1]->at == doctest::Approx(4.0).epsilon(0.001));
}

TEST_CASE("tpm: Release corrects the bucket by used minus estimated") {
  FakeClock clock(kStart);
  SUBCASE("used more than estimated: later calls wait longer") {
    ProviderGate gate(&clock, GateLimits{0, 0, 6000});
    Recorder rec(&clock);
    gate.Acquire(100, nullptr, 0, rec.Callback());  // 100 -> 0
    gate.Release(100, 300);                         // 0 -> -200
    gate.Acquire(10, nullptr, 0, rec.Callback());
    CHECK_FALSE(rec.calls[1]->status.has_value());
    clock.Advance(1.9);
    CHECK_FALSE(rec.calls[1]->status.has_value());
    clock.Advance(0.2);
    CHECK(rec.calls[1]->status.has_value());
  }
  SUBCASE("used less than estimated: the refund admits a waiter at once") {
    ProviderGate gate(&clock, GateLimits{0, 0, 6000});
    Recorder rec(&clock);
    gate.Acquire(400, nullptr, 0, rec.Callback());  // 100 -> -300
    gate.Acquire(10, nullptr, 0, rec.Callback());
    CHECK_FALSE(rec.calls[1]->status.has_value());
    gate.Release(400, 50);  // -300 -> 50
    REQUIRE(rec.calls[1]->status.has_value());
    CHECK(rec.calls[1]->at == 0);
  }
  SUBCASE("a refund never fills the bucket beyond one second's worth") {
    ProviderGate gate(&clock, GateLimits{0, 0, 6000});
    Recorder rec(&clock);
    gate.Acquire(100, nullptr, 0, rec.Callback());  // 100 -> 0
    gate.Release(100, 0);                           // back to 100, not 200
    gate.Acquire(150, nullptr, 0, rec.Callback());  // 100 -> -50
    gate.Acquire(1, nullptr, 0, rec.Callback());
    CHECK(rec.calls[1]->status.has_value());
    CHECK_FALSE(rec.calls[2]->status.has_value());
    clock.Advance(0.6);
    CHECK(rec.calls[2]->status.has_value());
  }
}

TEST_CASE("a waiting call whose token is cancelled leaves the queue with kCancelled") {
  FakeClock clock(kStart);
  ProviderGate gate(&clock, GateLimits{0, 60, 0});
  Recorder rec(&clock);
  CancelToken token;
  gate.Acquire(0, nullptr, 0, rec.Callback());
  gate.Acquire(0, &token, 0, rec.Callback());
  gate.Acquire(0, nullptr, 0, rec.Callback());
  CHECK(gate.waiting() == 2);
  token.Cancel();
  REQUIRE(rec.calls[1]->status.has_value());
  CHECK(rec.calls[1]->status->kind() == ErrorKind::kCancelled);
  CHECK(gate.waiting() == 1);
  clock.Advance(1.01);
  REQUIRE(rec.calls[2]->status.has_value());
  CHECK(rec.calls[2]->status->ok());
  CHECK(rec.calls[2]->at == doctest::Approx(1.0).epsilon(0.001));
}

TEST_CASE("an already cancelled token is refused without waiting") {
  FakeClock clock(kStart);
  ProviderGate gate(&clock, GateLimits{1, 0, 0});
  Recorder rec(&clock);
  CancelToken token;
  token.Cancel();
  gate.Acquire(0, nullptr, 0, rec.Callback());
  gate.Acquire(0, &token, 0, rec.Callback());
  REQUIRE(rec.calls[1]->status.has_value());
  CHECK(rec.calls[1]->status->kind() == ErrorKind::kCancelled);
  CHECK(gate.waiting() == 0);
}

TEST_CASE("cancelling an admitted call's token later changes nothing") {
  FakeClock clock(kStart);
  ProviderGate gate(&clock, GateLimits{1, 0, 0});
  Recorder rec(&clock);
  CancelToken token;
  gate.Acquire(0, nullptr, 0, rec.Callback());
  gate.Acquire(0, &token, 0, rec.Callback());
  gate.Release(0, 0);
  REQUIRE(rec.calls[1]->status.has_value());
  CHECK(rec.calls[1]->status->ok());
  token.Cancel();
  CHECK(rec.calls[1]->status->ok());
  CHECK(gate.in_flight() == 1);
}

TEST_CASE("a waiting call whose deadline passes gets kTimeout") {
  FakeClock clock(kStart);
  ProviderGate gate(&clock, GateLimits{1, 0, 0});
  Recorder rec(&clock);
  gate.Acquire(0, nullptr, 0, rec.Callback());
  gate.Acquire(0, nullptr, kStart + 5, rec.Callback());
  gate.Acquire(0, nullptr, 0, rec.Callback());
  clock.Advance(4.9);
  CHECK_FALSE(rec.calls[1]->status.has_value());
  clock.Advance(0.2);
  REQUIRE(rec.calls[1]->status.has_value());
  CHECK(rec.calls[1]->status->kind() == ErrorKind::kTimeout);
  CHECK(rec.calls[1]->status->message() == "timed out waiting for the provider's rate limit");
  CHECK(rec.calls[1]->at == doctest::Approx(5.0));
  CHECK(gate.waiting() == 1);
  gate.Release(0, 0);
  CHECK(rec.calls[2]->status.has_value());
  CHECK(clock.pending() == 0);
}

TEST_CASE("a deadline before the rate limit frees the head times it out first") {
  FakeClock clock(kStart);
  ProviderGate gate(&clock, GateLimits{0, 6, 0});  // one call every 10 s
  Recorder rec(&clock);
  gate.Acquire(0, nullptr, 0, rec.Callback());
  gate.Acquire(0, nullptr, kStart + 3, rec.Callback());
  gate.Acquire(0, nullptr, 0, rec.Callback());
  clock.Advance(3);
  REQUIRE(rec.calls[1]->status.has_value());
  CHECK(rec.calls[1]->status->kind() == ErrorKind::kTimeout);
  CHECK_FALSE(rec.calls[2]->status.has_value());
  clock.Advance(7.01);
  REQUIRE(rec.calls[2]->status.has_value());
  CHECK(rec.calls[2]->at == doctest::Approx(10.0).epsilon(0.001));
}

TEST_CASE("an unlimited gate admits at once on the caller's thread") {
  FakeClock clock(kStart);
  ProviderGate gate(&clock, GateLimits{});
  Recorder rec(&clock);
  for (int i = 0; i < 1000; ++i) gate.Acquire(1000000, nullptr, 0, rec.Callback());
  for (const auto& call : rec.calls) {
    REQUIRE(call->status.has_value());
    CHECK(call->status->ok());
  }
  CHECK(gate.in_flight() == 1000);
  CHECK(clock.pending() == 0);
  for (int i = 0; i < 1000; ++i) gate.Release(1000000, 5);
  CHECK(gate.in_flight() == 0);
}

TEST_CASE("an admitted callback may Release and Acquire again without deadlock") {
  FakeClock clock(kStart);
  ProviderGate gate(&clock, GateLimits{1, 120, 0});
  int admitted = 0;
  std::function<void(Status)> again = [&](Status status) {
    CHECK(status.ok());
    ++admitted;
    gate.Release(0, 0);
    if (admitted < 10) gate.Acquire(0, nullptr, 0, again);
  };
  gate.Acquire(0, nullptr, 0, again);
  while (clock.RunNext()) {
  }
  CHECK(admitted == 10);
  CHECK(clock.Now() - kStart == doctest::Approx(4.0).epsilon(0.01));
}

TEST_CASE("destroying the gate ends waiting calls with kCancelled") {
  FakeClock clock(kStart);
  Recorder rec(&clock);
  CancelToken token;
  {
    ProviderGate gate(&clock, GateLimits{0, 60, 0});
    gate.Acquire(0, nullptr, 0, rec.Callback());
    gate.Acquire(0, &token, 0, rec.Callback());
  }
  REQUIRE(rec.calls[1]->status.has_value());
  CHECK(rec.calls[1]->status->kind() == ErrorKind::kCancelled);
  token.Cancel();
  clock.Advance(10);
  CHECK(clock.pending() == 0);
}

TEST_CASE("Acquire, Release and Cancel from several threads at once" * doctest::timeout(60)) {
  FakeClock clock(kStart);
  ProviderGate gate(&clock, GateLimits{3, 6000, 0});
  constexpr int kThreads = 4;
  constexpr int kCalls = 200;
  std::atomic<int> ended{0};
  std::atomic<int> admitted{0};
  std::atomic<int> current{0};
  std::atomic<int> peak{0};
  std::atomic<bool> stop{false};
  std::thread driver([&] {
    while (!stop) clock.Advance(0.01);
  });
  std::vector<std::vector<std::unique_ptr<CancelToken>>> tokens(kThreads);
  std::vector<std::thread> callers;
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kCalls; ++i) tokens[t].push_back(std::make_unique<CancelToken>());
    callers.emplace_back([&, t] {
      for (int i = 0; i < kCalls; ++i) {
        CancelToken* token = tokens[t][i].get();
        gate.Acquire(0, token, 0, [&](Status status) {
          if (status.ok()) {
            int now = ++current;
            int seen = peak.load();
            while (now > seen && !peak.compare_exchange_weak(seen, now)) {
            }
            --current;
            ++admitted;
            gate.Release(0, 0);
          }
          ++ended;
        });
        if (i % 5 == 0) token->Cancel();
      }
    });
  }
  for (auto& caller : callers) caller.join();
  auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (ended < kThreads * kCalls && std::chrono::steady_clock::now() < limit) {
    std::this_thread::yield();
  }
  stop = true;
  driver.join();
  CHECK(ended == kThreads * kCalls);
  CHECK(admitted >= kThreads * kCalls * 4 / 5);
  CHECK(peak <= 3);
  CHECK(gate.in_flight() == 0);
  CHECK(gate.waiting() == 0);
}

}  // namespace
}  // namespace keel
