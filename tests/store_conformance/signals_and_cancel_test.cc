// Signals and cancellation: a signal is kept until a wait takes it, taken
// once across stores (the node that took it gets the same data again),
// takes fenced by the run's epoch; CancelRun asks a live owner and records
// anything else cancelled at once, fencing later claims.

#include <atomic>
#include <thread>
#include <vector>

#include "tests/store_conformance/conformance.h"

namespace keel::conformance {
namespace {

KEEL_CONFORMANCE_SUITE;

std::optional<std::string> Take(Store& store, const std::string& run, const std::string& name,
                                const std::string& node, double now) {
  return Must(store.TakeSignal(run, name, node, now));
}

TEST_CASE("signals are kept until taken, oldest first, each by one wait" * doctest::timeout(60)) {
  KEEL_FRESH_BACKEND(db);
  auto store = db->Open();
  Create(*store, "r1");
  CHECK_FALSE(Take(*store, "r1", "go", "w1", 1).has_value());
  REQUIRE_OK(store->SendSignal("r1", "go", R"({"n":1})", 1));
  REQUIRE_OK(store->SendSignal("r1", "go", "2", 2));
  REQUIRE_OK(store->SendSignal("r1", "other", R"(["x", null])", 3));
  CHECK(Take(*store, "r1", "go", "w1", 4) == std::optional<std::string>(R"({"n":1})"));
  CHECK(Take(*store, "r1", "go", "w1", 5) == std::optional<std::string>(R"({"n":1})"));
  CHECK(Take(*store, "r1", "go", "w2", 6) == std::optional<std::string>("2"));
  CHECK_FALSE(Take(*store, "r1", "go", "w3", 7).has_value());
  // Durable: another store sees what was taken, and by which node.
  auto other = db->OpenSecond();
  CHECK(Take(*other, "r1", "go", "w2", 8) == std::optional<std::string>("2"));
  CHECK(Take(*other, "r1", "other", "w3", 8) == std::optional<std::string>(R"(["x", null])"));
  CHECK_FALSE(Take(*other, "r1", "go", "w4", 9).has_value());
}

TEST_CASE("signals to unknown or finished runs are refused; waiting runs take them" *
          doctest::timeout(60)) {
  KEEL_FRESH_BACKEND(db);
  auto store = db->Open();
  CHECK(store->SendSignal("nope", "go", "null", 1).kind() == ErrorKind::kPermanent);
  Create(*store, "r1");
  store->FinishRun("r1", RunStatus::kWaiting, "", 5);
  Flushed(*store);
  CHECK_OK(store->SendSignal("r1", "go", "null", 6));
  store->FinishRun("r1", RunStatus::kSucceeded, "", 7);
  Flushed(*store);
  Status refused = store->SendSignal("r1", "go", "null", 8);
  CHECK(refused.kind() == ErrorKind::kPermanent);
  CHECK(Contains(refused.message(), "already succeeded"));
  for (RunStatus status : {RunStatus::kFailed, RunStatus::kDegraded}) {
    const std::string id = std::string(RunStatusName(status));
    Create(*store, id);
    store->FinishRun(id, status, "x", 9);
    Flushed(*store);
    CHECK(store->SendSignal(id, "go", "null", 10).kind() == ErrorKind::kPermanent);
  }
  REQUIRE_OK(store->CreateRun(QueuedRun("queued")));
  CHECK_OK(store->SendSignal("queued", "go", "null", 10));
}

TEST_CASE("waits in two stores racing for signals take each exactly once" *
          doctest::timeout(180)) {
  KEEL_FRESH_BACKEND(db);
  auto a = db->Open();
  auto b = db->OpenSecond();
  Create(*a, "r1");
  constexpr int kSignals = 40;
  for (int i = 0; i < kSignals; ++i) {
    REQUIRE_OK(a->SendSignal("r1", "go", std::to_string(i), i));
  }
  std::vector<std::vector<int>> taken(4);
  std::atomic<int> errors{0};
  std::vector<std::thread> waits;
  for (int t = 0; t < 4; ++t) {
    Store* store = t % 2 ? a.get() : b.get();
    waits.emplace_back([&, store, t] {
      for (int i = 0;; ++i) {
        auto got = store->TakeSignal("r1", "go", "w" + std::to_string(t) + "-" + std::to_string(i),
                                     100);
        if (!got.ok()) {
          ++errors;
          return;
        }
        if (!got->has_value()) return;
        taken[t].push_back(std::stoi(**got));
      }
    });
  }
  for (auto& w : waits) w.join();
  CHECK(errors == 0);
  std::vector<int> all;
  for (const auto& t : taken) all.insert(all.end(), t.begin(), t.end());
  std::sort(all.begin(), all.end());
  std::vector<int> expected(kSignals);
  for (int i = 0; i < kSignals; ++i) expected[i] = i;
  CHECK(all == expected);
  for (const auto& t : taken) CHECK(std::is_sorted(t.begin(), t.end()));  // oldest first
}

TEST_CASE("a take is fenced by the epoch the store holds" * doctest::timeout(60)) {
  KEEL_FRESH_BACKEND(db);
  auto first = db->Open();
  Create(*first, "r1");
  REQUIRE_OK(first->SendSignal("r1", "go", "1", 1));
  auto second = db->OpenSecond();
  RunRecord run = RunOf(*second, "r1");
  REQUIRE_OK(second->ClaimRun(run, run.epoch, kDead));
  auto stale = first->TakeSignal("r1", "go", "w", 2);
  REQUIRE_FALSE(stale.ok());
  CHECK(stale.status().kind() == ErrorKind::kPermanent);
  CHECK(Take(*second, "r1", "go", "w", 3) == std::optional<std::string>("1"));
  auto pending = Must(second->CountState());
  CHECK(pending.signals_pending == 0);
}

TEST_CASE("cancel asks a live owner; the request fences later claims" * doctest::timeout(60)) {
  KEEL_FRESH_BACKEND(db);
  auto store = db->Open();
  Create(*store, "live");
  CHECK_FALSE(Must(store->CancelRequested("live")));
  auto other = db->OpenSecond();
  CHECK(Must(other->CancelRun("live", 10, kAlive)) == CancelOutcome::kRequested);
  CHECK(Must(store->CancelRequested("live")));
  RunRecord live = RunOf(*store, "live");
  CHECK(live.status == RunStatus::kRunning);
  CHECK(live.epoch == 1);
  // The owner died before it could record the cancel: no one may resume it.
  auto claim = other->ClaimRun(live, live.epoch, kDead);
  REQUIRE_FALSE(claim.ok());
  CHECK(claim.status().kind() == ErrorKind::kPermanent);
  CHECK(Contains(claim.status().message(), "cancel"));
  // The owner records the cancel itself.
  store->FinishRun("live", RunStatus::kCancelled, "cancelled", 11);
  Flushed(*store);
  CHECK(RunOf(*other, "live").status == RunStatus::kCancelled);
}

TEST_CASE("cancel of a run no live process holds records it cancelled and fences it" *
          doctest::timeout(60)) {
  KEEL_FRESH_BACKEND(db);
  auto store = db->Open();
  Create(*store, "parked");
  store->SaveNode(MakeNode("parked", "done"));
  store->SaveNode(MakeNode("parked", "wait", NodeStatus::kWaiting));
  store->SaveNode(MakeNode("parked", "busy", NodeStatus::kRunning));
  store->SaveNode(MakeNode("parked", "todo", NodeStatus::kPending));
  store->FinishRun("parked", RunStatus::kWaiting, "", 5);
  Flushed(*store);
  RunRecord before = RunOf(*store, "parked");
  auto other = db->OpenSecond();
  // Waiting: no process runs it, whatever its recorded owner.
  CHECK(Must(other->CancelRun("parked", 11, kAlive)) == CancelOutcome::kCancelled);
  RunRecord after = RunOf(*store, "parked");
  CHECK(after.status == RunStatus::kCancelled);
  CHECK(after.finished_at == 11);
  CHECK(after.epoch == before.epoch + 1);
  auto nodes = Must(store->GetNodes("parked"));
  CHECK(FindNode(nodes, "done")->status == NodeStatus::kSucceeded);
  CHECK(FindNode(nodes, "wait")->status == NodeStatus::kCancelled);
  CHECK(FindNode(nodes, "busy")->status == NodeStatus::kCancelled);
  CHECK(FindNode(nodes, "todo")->status == NodeStatus::kPending);
  // A resume that read the run before the cancel is refused, and so is one after.
  CHECK_FALSE(store->ClaimRun(before, before.epoch, kDead).ok());
  CHECK_FALSE(store->ClaimRun(after, after.epoch, kDead).ok());
  auto twice = store->CancelRun("parked", 12, kDead);
  REQUIRE_FALSE(twice.ok());
  CHECK(twice.status().kind() == ErrorKind::kPermanent);
  CHECK(Contains(twice.status().message(), "already cancelled"));
  CHECK_FALSE(store->SendSignal("parked", "go", "null", 12).ok());

  // Running with a dead owner, interrupted and queued: cancelled at once.
  Create(*store, "dead");
  Create(*store, "stopped");
  store->FinishRun("stopped", RunStatus::kInterrupted, "", 3);
  Flushed(*store);
  REQUIRE_OK(store->CreateRun(QueuedRun("queued")));
  for (const char* id : {"dead", "stopped", "queued"}) {
    CAPTURE(id);
    CHECK(Must(other->CancelRun(id, 20, kDead)) == CancelOutcome::kCancelled);
    CHECK(RunOf(*store, id).status == RunStatus::kCancelled);
  }
  Create(*store, "finished");
  store->FinishRun("finished", RunStatus::kFailed, "x", 4);
  Flushed(*store);
  CHECK(store->CancelRun("finished", 20, kDead).status().kind() == ErrorKind::kPermanent);
  CHECK(RunOf(*store, "finished").status == RunStatus::kFailed);
  CHECK(store->CancelRun("nope", 20, kDead).status().kind() == ErrorKind::kPermanent);
}

TEST_CASE("a store's queued writes for a run cancelled by another are refused" *
          doctest::timeout(60)) {
  KEEL_FRESH_BACKEND(db);
  auto owner = db->Open();
  Create(*owner, "r1");
  REQUIRE_OK(owner->SendSignal("r1", "go", "1", 5));
  auto other = db->OpenSecond();
  // The owner is taken for dead (its heartbeat stale): cancelled at once.
  REQUIRE(Must(other->CancelRun("r1", 10, kDead)) == CancelOutcome::kCancelled);
  auto take = owner->TakeSignal("r1", "go", "w", 11);
  REQUIRE_FALSE(take.ok());
  CHECK(take.status().kind() == ErrorKind::kPermanent);
  owner->SaveNode(MakeNode("r1", "late"));
  CHECK_FALSE(owner->Flush().ok());
  CHECK(Must(other->GetNodes("r1")).empty());
}

}  // namespace
}  // namespace keel::conformance
