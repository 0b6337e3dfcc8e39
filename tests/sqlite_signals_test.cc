// The SQLite store's signals and cancellation: a signal is kept until a wait
// takes it and is taken once (the same node gets it again), takes are fenced
// by the run's epoch, finished runs take no signals, and a cancel is decided
// in one transaction that a later claim sees.

#include <doctest/doctest.h>

#include "engine/process_owner.h"
#include "store/sqlite/sqlite_store.h"
#include "tests/sqlite_test_util.h"

namespace keel {
namespace {

using testing::MakeNode;
using testing::MakeRun;
using testing::OpenStore;
using testing::ScratchDir;

const auto kAlive = [](const Owner&, double) { return true; };
const auto kDead = [](const Owner&, double) { return false; };

}  // namespace

TEST_CASE("signals are kept until taken, oldest first, each by one wait" * doctest::timeout(30)) {
  ScratchDir dir;
  auto store = OpenStore(dir.Path("keel.db"));
  REQUIRE(store->CreateRun(MakeRun("r1")).ok());
  CHECK_FALSE(store->TakeSignal("r1", "go", "w1", 1)->has_value());
  REQUIRE(store->SendSignal("r1", "go", "1", 1).ok());
  REQUIRE(store->SendSignal("r1", "go", "2", 2).ok());
  REQUIRE(store->SendSignal("r1", "other", "3", 3).ok());
  CHECK(store->TakeSignal("r1", "go", "w1", 4)->value() == "1");
  CHECK(store->TakeSignal("r1", "go", "w1", 5)->value() == "1");  // the same node: the same one
  CHECK(store->TakeSignal("r1", "go", "w2", 6)->value() == "2");
  CHECK_FALSE(store->TakeSignal("r1", "go", "w3", 7)->has_value());
  // Durable: another store on the file sees what was taken.
  auto other = OpenStore(dir.Path("keel.db"));
  CHECK(other->TakeSignal("r1", "go", "w2", 8)->value() == "2");
  CHECK(other->TakeSignal("r1", "other", "w3", 8)->value() == "3");
}

TEST_CASE("signals to unknown or finished runs are refused" * doctest::timeout(30)) {
  ScratchDir dir;
  auto store = OpenStore(dir.Path("keel.db"));
  CHECK(store->SendSignal("nope", "go", "null", 1).kind() == ErrorKind::kPermanent);
  REQUIRE(store->CreateRun(MakeRun("r1")).ok());
  store->FinishRun("r1", RunStatus::kWaiting, "", 5);
  REQUIRE(store->Flush().ok());
  CHECK(store->GetRun("r1")->finished_at == 0);  // waiting is not finished
  CHECK(store->SendSignal("r1", "go", "null", 6).ok());
  store->FinishRun("r1", RunStatus::kSucceeded, "", 7);
  REQUIRE(store->Flush().ok());
  Status refused = store->SendSignal("r1", "go", "null", 8);
  CHECK(refused.kind() == ErrorKind::kPermanent);
  CHECK(refused.message().find("already succeeded") != std::string::npos);
}

TEST_CASE("a take is fenced by the epoch the store holds" * doctest::timeout(30)) {
  ScratchDir dir;
  auto first = OpenStore(dir.Path("keel.db"));
  REQUIRE(first->CreateRun(MakeRun("r1")).ok());
  REQUIRE(first->SendSignal("r1", "go", "1", 1).ok());
  auto second = OpenStore(dir.Path("keel.db"));
  RunRecord run = *second->GetRun("r1");
  REQUIRE(second->ClaimRun(run, run.epoch, kDead).ok());
  auto stale = first->TakeSignal("r1", "go", "w", 2);
  CHECK_FALSE(stale.ok());
  CHECK(second->TakeSignal("r1", "go", "w", 3)->value() == "1");
}

TEST_CASE("cancel: a live owner is asked, anything else is cancelled and fenced" *
          doctest::timeout(30)) {
  ScratchDir dir;
  auto store = OpenStore(dir.Path("keel.db"));
  REQUIRE(store->CreateRun(MakeRun("live")).ok());
  CHECK_FALSE(*store->CancelRequested("live"));
  CHECK(*store->CancelRun("live", 10, kAlive) == CancelOutcome::kRequested);
  CHECK(*store->CancelRequested("live"));
  CHECK(store->GetRun("live")->status == RunStatus::kRunning);
  // The owner died before it could record the cancel: no one may resume it.
  RunRecord live = *store->GetRun("live");
  auto claim = store->ClaimRun(live, live.epoch, kDead);
  CHECK_FALSE(claim.ok());
  CHECK(claim.status().message().find("cancel") != std::string::npos);

  REQUIRE(store->CreateRun(MakeRun("parked")).ok());
  store->SaveNode(MakeNode("parked", "done"));
  store->SaveNode(MakeNode("parked", "wait", NodeStatus::kWaiting));
  store->FinishRun("parked", RunStatus::kWaiting, "", 5);
  REQUIRE(store->Flush().ok());
  RunRecord before = *store->GetRun("parked");
  CHECK(*store->CancelRun("parked", 11, kAlive) == CancelOutcome::kCancelled);
  RunRecord after = *store->GetRun("parked");
  CHECK(after.status == RunStatus::kCancelled);
  CHECK(after.finished_at == 11);
  CHECK(after.epoch == before.epoch + 1);
  auto nodes = store->GetNodes("parked");
  REQUIRE(nodes.ok());
  for (const NodeRecord& node : *nodes) {
    CHECK(node.status == (node.node == "done" ? NodeStatus::kSucceeded : NodeStatus::kCancelled));
  }
  // A resume that read the run before the cancel is refused, and so is one after.
  CHECK_FALSE(store->ClaimRun(before, before.epoch, kDead).ok());
  CHECK_FALSE(store->ClaimRun(after, after.epoch, kDead).ok());
  CHECK(store->CancelRun("parked", 12, kDead).status().message().find("already cancelled") !=
        std::string::npos);
  CHECK_FALSE(store->SendSignal("parked", "go", "null", 12).ok());
  // gc deletes it (it is finished), and leaves the waiting and running ones.
  store->FinishRun("live", RunStatus::kWaiting, "", 0);
  REQUIRE(store->Flush().ok());
  CHECK(*store->DeleteFinishedBefore(100) == 1);
  CHECK(store->GetRun("live").ok());
  CHECK_FALSE(store->GetRun("parked").ok());
}

}  // namespace keel
