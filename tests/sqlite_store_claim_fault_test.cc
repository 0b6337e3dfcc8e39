// SqliteStore claims through the fault-injecting VFS: ClaimRun reads and
// takes over a run in one transaction, a store whose claim was taken over
// has its writes for the run refused, and of two stores claiming at once
// exactly one wins.

#include <doctest/doctest.h>

#include <atomic>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "engine/process_owner.h"
#include "store/sqlite/sqlite_store.h"
#include "tests/sqlite_fault_util.h"
#include "tests/sqlite_test_util.h"

namespace keel {
namespace {

using testing::CleanVfs;
using testing::DeadOwner;
using testing::MakeEvent;
using testing::MakeNode;
using testing::MakeRun;
using testing::OpenFaultStore;
using testing::ScratchDir;

constexpr int kTimeoutS = 30;

bool NeverAlive(const Owner&, double) { return false; }

}  // namespace

TEST_CASE("ClaimRun reads and takes over a run in one transaction, bumping its epoch" *
          doctest::timeout(kTimeoutS)) {
  CleanVfs clean;
  ScratchDir dir;
  const std::string path = dir.Path("keel.db");
  auto store = OpenFaultStore(path);
  RunRecord run = MakeRun("r1", 100);
  run.owner = DeadOwner();
  REQUIRE(store->CreateRun(run).ok());
  store->SaveNode(MakeNode("r1", "a"));
  store->SaveNode(MakeNode("r1", "b", NodeStatus::kFailed));
  store->FinishRun("r1", RunStatus::kFailed, "boom", 150);
  REQUIRE(store->Flush().ok());
  auto recorded = store->GetRun("r1");
  REQUIRE(recorded.ok());
  const int64_t epoch = recorded->epoch;

  RunRecord claim = run;
  claim.owner = CurrentOwner();
  claim.heartbeat = claim.updated_at = 200;
  claim.script_text = "fixed";
  auto claimed = store->ClaimRun(claim, epoch, NeverAlive);
  REQUIRE_MESSAGE(claimed.ok(), claimed.status().ToString());
  CHECK(claimed->epoch > epoch);
  CHECK(claimed->before.status == RunStatus::kFailed);
  CHECK(claimed->before.owner.pid == run.owner.pid);
  CHECK(claimed->before.error == "boom");
  REQUIRE(claimed->nodes.size() == 2);
  auto now = store->GetRun("r1");
  REQUIRE(now.ok());
  CHECK(now->epoch == claimed->epoch);
  CHECK(now->status == RunStatus::kRunning);
  CHECK(now->owner.pid == claim.owner.pid);
  CHECK(now->script_text == "fixed");

  // The same expected epoch again: someone (here, this store) got there first.
  auto again = store->ClaimRun(claim, epoch, NeverAlive);
  REQUIRE_FALSE(again.ok());
  CHECK(again.status().kind() == ErrorKind::kPermanent);
  CHECK(again.status().message().find("another process") != std::string::npos);

  // A live owner, a missing run and a finished run cannot be claimed.
  auto alive = store->ClaimRun(claim, claimed->epoch, [](const Owner&, double) { return true; });
  CHECK(alive.status().kind() == ErrorKind::kPermanent);
  CHECK(store->ClaimRun(MakeRun("nope"), 0, NeverAlive).status().kind() == ErrorKind::kPermanent);
  store->FinishRun("r1", RunStatus::kSucceeded, "", 300);
  REQUIRE(store->Flush().ok());
  auto finished = store->GetRun("r1");
  REQUIRE(finished.ok());
  CHECK(finished->status == RunStatus::kSucceeded);
  auto succeeded = store->ClaimRun(claim, finished->epoch, NeverAlive);
  REQUIRE_FALSE(succeeded.ok());
  CHECK(succeeded.status().kind() == ErrorKind::kPermanent);
}

TEST_CASE("after another store claims the run, this store's writes for it are refused" *
          doctest::timeout(kTimeoutS)) {
  CleanVfs clean;
  ScratchDir dir;
  const std::string path = dir.Path("keel.db");
  auto first = OpenFaultStore(path);
  auto second = OpenFaultStore(path);
  RunRecord run = MakeRun("r1", 100);
  run.owner = DeadOwner();
  REQUIRE(first->CreateRun(run).ok());
  REQUIRE(first->CreateRun(MakeRun("other", 100)).ok());
  const int64_t epoch0 = first->GetRun("r1")->epoch;

  RunRecord claim = run;
  claim.owner = CurrentOwner();
  auto mine = first->ClaimRun(claim, epoch0, NeverAlive);
  REQUIRE_MESSAGE(mine.ok(), mine.status().ToString());
  first->SaveNode(MakeNode("r1", "before"));
  REQUIRE(first->Flush().ok());

  // The second store takes over (as a racing resume would, had the first died).
  auto theirs = second->ClaimRun(claim, mine->epoch, NeverAlive);
  REQUIRE_MESSAGE(theirs.ok(), theirs.status().ToString());
  CHECK(theirs->epoch > mine->epoch);
  REQUIRE(theirs->nodes.size() == 1);

  first->SaveNode(MakeNode("r1", "stale"));
  first->AppendEvent(MakeEvent("r1", "stale"));
  first->FinishRun("r1", RunStatus::kSucceeded, "", 400);
  Status flushed = first->Flush();
  CHECK_FALSE(flushed.ok());
  CHECK(flushed.kind() == ErrorKind::kPermanent);
  CHECK(flushed.message().find("taken over") != std::string::npos);
  Status health = first->WriteHealth();
  CHECK(health.kind() == ErrorKind::kPermanent);
  CHECK(health.message().find("taken over") != std::string::npos);

  second->SaveNode(MakeNode("r1", "fresh"));
  REQUIRE(second->Flush().ok());
  CHECK(second->WriteHealth().ok());
  auto nodes = second->GetNodes("r1");
  REQUIRE(nodes.ok());
  std::vector<std::string> names;
  for (const NodeRecord& node : *nodes) names.push_back(node.node);
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"before", "fresh"});
  auto events = second->GetEvents("r1");
  REQUIRE(events.ok());
  for (const EventRecord& event : *events) CHECK(event.kind != "stale");
  auto after = second->GetRun("r1");
  REQUIRE(after.ok());
  CHECK(after->status == RunStatus::kRunning);
  CHECK(after->epoch == theirs->epoch);
  // The first store's claim cannot come back with its old epoch either.
  CHECK_FALSE(first->ClaimRun(claim, mine->epoch, NeverAlive).ok());
}

TEST_CASE("two stores claiming one run at once: exactly one wins" * doctest::timeout(kTimeoutS)) {
  CleanVfs clean;
  ScratchDir dir;
  const std::string path = dir.Path("keel.db");
  for (int trial = 0; trial < 20; ++trial) {
    CAPTURE(trial);
    auto a = OpenFaultStore(path, 5, /*busy_timeout=*/2);
    auto b = OpenFaultStore(path, 5, /*busy_timeout=*/2);
    const std::string id = "r" + std::to_string(trial);
    RunRecord run = MakeRun(id, 100);
    run.owner = DeadOwner();
    REQUIRE(a->CreateRun(run).ok());
    const int64_t epoch = a->GetRun(id)->epoch;
    RunRecord claim = run;
    claim.owner = CurrentOwner();
    std::promise<void> go;
    std::shared_future<void> start = go.get_future().share();
    auto claim_with = [&](SqliteStore* store) {
      return std::async(std::launch::async, [&, store] {
        start.wait();
        return store->ClaimRun(claim, epoch, NeverAlive);
      });
    };
    auto fa = claim_with(a.get());
    auto fb = claim_with(b.get());
    go.set_value();
    auto ra = fa.get();
    auto rb = fb.get();
    CHECK(ra.ok() + rb.ok() == 1);
    const auto& loser = ra.ok() ? rb : ra;
    CHECK(loser.status().message().find("another process") != std::string::npos);
  }
}

}  // namespace keel
