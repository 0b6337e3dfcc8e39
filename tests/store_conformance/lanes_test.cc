// Concurrency lanes shared through the store (a provider's max_concurrency
// across processes): slots held per holder up to the lane's limit, given
// back, renewed, freed when a holder's lease runs out, and never more than
// the limit held together by stores racing for them.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "tests/store_conformance/conformance.h"

namespace keel::conformance {
namespace {

KEEL_CONFORMANCE_SUITE;

int Held(Store& store, const std::string& holder, int want, double lease_s = 30,
         double now = 1000) {
  auto held = store.HoldSlots("provider:llm:concurrency", holder, want, 3, lease_s, now);
  REQUIRE_OK(held);
  return *held;
}

TEST_CASE("slots are held up to the lane's limit, given back and renewed" * doctest::timeout(60)) {
  KEEL_FRESH_BACKEND(db);
  auto store = db->Open();
  auto other = db->OpenSecond();
  CHECK(Held(*store, "a", 2) == 2);
  CHECK(Held(*other, "b", 2) == 1);  // a holds two of three
  CHECK(Held(*other, "b", 2) == 1);  // asking again changes nothing
  CHECK(Held(*store, "a", 0) == 0);  // a gives its slots back
  CHECK(Held(*other, "b", 2) == 2);
  CHECK(Held(*store, "a", 3) == 1);
  CHECK(Held(*other, "b", 1) == 1);  // fewer is always granted
  CHECK(Held(*store, "a", 3) == 2);
  // Another lane is another count.
  auto elsewhere = store->HoldSlots("provider:other:concurrency", "a", 3, 3, 30, 1000);
  REQUIRE_OK(elsewhere);
  CHECK(*elsewhere == 3);
}

TEST_CASE("a holder whose lease ran out loses its slots" * doctest::timeout(60)) {
  KEEL_FRESH_BACKEND(db);
  auto store = db->Open();
  CHECK(Held(*store, "gone", 3, 0.2) == 3);
  CHECK(Held(*store, "b", 1) == 0);
  // Stores that time leases by the caller's clock see it pass at once, those
  // that use the database's clock once 0.2 s have.
  double now = 1000;
  int got = 0;
  auto start = std::chrono::steady_clock::now();
  while (got == 0 && std::chrono::steady_clock::now() - start < std::chrono::seconds(10)) {
    now += 1;
    got = Held(*store, "b", 1, 30, now);
    if (got == 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CHECK(got == 1);
}

TEST_CASE("bad lanes are refused" * doctest::timeout(60)) {
  KEEL_FRESH_BACKEND(db);
  auto store = db->Open();
  CHECK(store->HoldSlots("k", "a", 1, 0, 30, 1000).status().kind() == ErrorKind::kPermanent);
  CHECK(store->HoldSlots("k", "a", -1, 3, 30, 1000).status().kind() == ErrorKind::kPermanent);
  CHECK(store->HoldSlots("k", "a", 1, 3, 0, 1000).status().kind() == ErrorKind::kPermanent);
}

TEST_CASE("stores racing for slots never hold more than the limit together" *
          doctest::timeout(120)) {
  KEEL_FRESH_BACKEND(db);
  std::vector<std::unique_ptr<Store>> stores;
  for (int i = 0; i < 4; ++i) stores.push_back(db->OpenSecond());
  std::atomic<int> in_use{0};
  std::atomic<int> most{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      const std::string holder = "h" + std::to_string(i);
      for (int round = 0; round < 25; ++round) {
        auto held = stores[i]->HoldSlots("lane", holder, 2, 3, 30, 1000);
        if (!held.ok()) continue;
        int now_in_use = in_use.fetch_add(*held) + *held;
        int seen = most.load();
        while (now_in_use > seen && !most.compare_exchange_weak(seen, now_in_use)) {
        }
        in_use.fetch_sub(*held);
        (void)stores[i]->HoldSlots("lane", holder, 0, 3, 30, 1000);
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(most.load() <= 3);
  CHECK(most.load() >= 1);
}

}  // namespace
}  // namespace keel::conformance
