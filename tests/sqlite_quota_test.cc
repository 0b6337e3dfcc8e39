// Store::TakeQuota on SQLite (schema version 13): the token bucket
// arithmetic, and two stores (as two processes would) on one file taking
// from one bucket from several threads without ever taking more than
// rate x window + burst; and StoreQuotaSource over it.

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/clock.h"
#include "engine/store_quota_source.h"
#include "store/sqlite/sqlite_store.h"
#include "tests/sqlite_test_util.h"

namespace keel {
namespace {

using testing::OpenStore;
using testing::ScratchDir;

TEST_CASE("a bucket starts full, refills at its rate up to its burst, and says how long to wait") {
  ScratchDir dir;
  auto store = OpenStore(dir.Path("keel.db"));
  const double t0 = 1.7e9;
  auto grant = store->TakeQuota("provider:p:rpm", 3, 10, 5, t0);
  REQUIRE(grant.ok());
  CHECK(grant->taken == 3);
  CHECK(grant->wait_s == 0);
  CHECK(grant->left == doctest::Approx(2));
  grant = store->TakeQuota("provider:p:rpm", 4, 10, 5, t0);
  REQUIRE(grant.ok());
  CHECK(grant->taken == doctest::Approx(2));
  CHECK(grant->wait_s == doctest::Approx(0.2));  // 2 more at 10 a second
  grant = store->TakeQuota("provider:p:rpm", 1, 10, 5, t0 + 0.15);
  CHECK(grant->taken == doctest::Approx(1));
  CHECK(grant->left == doctest::Approx(0.5));
  // An hour idle refills to the burst, no more.
  grant = store->TakeQuota("provider:p:rpm", 100, 10, 5, t0 + 3600);
  CHECK(grant->taken == doctest::Approx(5));
  CHECK(grant->wait_s == doctest::Approx(0.5));  // the rest is more than a burst: until full
  // A clock that stepped back refills nothing.
  grant = store->TakeQuota("provider:p:rpm", 1, 10, 5, t0);
  CHECK(grant->taken == 0);
  // Other keys are other buckets.
  grant = store->TakeQuota("provider:p:tpm", 1000, 1000, 1000, t0);
  CHECK(grant->taken == 1000);
  // Bad limits are refused.
  auto bad = store->TakeQuota("provider:p:rpm", 1, 0, 5, t0);
  CHECK(!bad.ok());
  CHECK(bad.status().kind() == ErrorKind::kPermanent);
}

TEST_CASE("two stores on one file never take more than rate x window + burst together" *
          doctest::timeout(120)) {
  ScratchDir dir;
  const std::string path = dir.Path("keel.db");
  auto a = OpenStore(path);
  auto b = OpenStore(path);
  constexpr double kRate = 200, kBurst = 20;
  const double start = SystemClock()->WallNow();
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(800);
  std::mutex mu;
  double taken = 0, last_now = start;
  int takes = 0, failures = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    SqliteStore* store = t % 2 == 0 ? a.get() : b.get();
    threads.emplace_back([&, store, t] {
      while (std::chrono::steady_clock::now() < until) {
        double now = SystemClock()->WallNow();
        auto grant = store->TakeQuota("provider:shared:rpm", 1 + t % 3, kRate, kBurst, now);
        std::lock_guard<std::mutex> lock(mu);
        if (!grant.ok()) {
          ++failures;
          continue;
        }
        taken += grant->taken;
        ++takes;
        last_now = std::max(last_now, now);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  CAPTURE(takes);
  CHECK(failures == 0);
  CHECK(takes > 50);
  const double window = last_now - start;
  CHECK(taken <= kRate * window + kBurst + 1e-6);
  CHECK(taken >= kRate * window * 0.5);  // and the bucket was in use, not starved
}

TEST_CASE("StoreQuotaSource takes through the store it is attached to, off the caller's thread" *
          doctest::timeout(60)) {
  ScratchDir dir;
  auto store = OpenStore(dir.Path("keel.db"));
  auto source = std::make_shared<StoreQuotaSource>(SystemClock());
  auto take = [&](double want) {
    std::promise<Result<QuotaGrant>> promise;
    auto caller = std::this_thread::get_id();
    std::atomic<bool> other_thread{false};
    source->Take("provider:p:rpm", want, 1, 2, [&](Result<QuotaGrant> grant) {
      other_thread = std::this_thread::get_id() != caller;
      promise.set_value(std::move(grant));
    });
    auto grant = promise.get_future().get();
    CHECK(other_thread);
    return grant;
  };
  auto none = take(1);  // nothing attached yet
  CHECK(!none.ok());
  CHECK(none.status().kind() == ErrorKind::kTransient);
  {
    ScopedQuotaStore attached(source.get(), store.get());
    auto grant = take(5);
    REQUIRE(grant.ok());
    CHECK(grant->taken == doctest::Approx(2));  // a new bucket holds its burst
    CHECK(source->takes() == 1);
  }
  CHECK(!take(1).ok());  // detached with the scope
}

}  // namespace
}  // namespace keel
