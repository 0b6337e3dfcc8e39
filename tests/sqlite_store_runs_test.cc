// SqliteStore runs on real files, beyond the store conformance suite
// (tests/store_conformance/, which runs on SQLite too): claims against a
// process that exited, fencing, garbage collection, interrupted runs and
// reading through the read-only store. Writing (group commit, failures,
// locks) is in sqlite_store_test.cc.

#include "store/sqlite/sqlite_store.h"

#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "engine/process_owner.h"
#include "store/sqlite/sqlite_read_only_store.h"
#include "tests/sqlite_test_util.h"

namespace keel {
namespace {

using testing::DeadOwner;
using testing::MakeEvent;
using testing::MakeNode;
using testing::MakeRun;
using testing::OpenStore;
using testing::ScratchDir;

// A filter by status (any when nullopt) and limit, the other fields left as they are.
RunFilter FilterOf(std::optional<RunStatus> status, int limit) {
  RunFilter filter;
  filter.status = status;
  filter.limit = limit;
  return filter;
}

TEST_CASE("ClaimRun refuses a live owner and takes over from a dead one") {
  ScratchDir dir;
  auto store = OpenStore(dir.Path("keel.db"));
  RunRecord run = MakeRun("r1", 100);
  run.owner = CurrentOwner();
  REQUIRE(store->CreateRun(run).ok());
  store->FinishRun("r1", RunStatus::kFailed, "boom", 150);
  REQUIRE(store->Flush().ok());

  RunRecord claim = run;
  claim.owner = {run.owner.pid, run.owner.host, run.owner.start_ticks};
  claim.heartbeat = claim.updated_at = 130;
  claim.script_text = "fixed";
  claim.script_sha256 = "11";
  double seen_age = -1;
  auto alive = [&](const Owner& owner, double age) {
    seen_age = age;
    return OwnerAlive(owner, age);
  };
  Status refused = store->ClaimRun(claim, 1, alive).status();
  CHECK(refused.kind() == ErrorKind::kPermanent);
  CHECK(refused.message().find(std::to_string(run.owner.pid) + "@" + run.owner.host) !=
        std::string::npos);
  CHECK(seen_age == doctest::Approx(30));

  RunRecord dead_run = MakeRun("r2", 100);
  dead_run.owner = DeadOwner();
  REQUIRE(store->CreateRun(dead_run).ok());
  store->FinishRun("r2", RunStatus::kFailed, "crashed", 150);
  REQUIRE(store->Flush().ok());
  RunRecord take = dead_run;
  take.owner = CurrentOwner();
  take.heartbeat = take.updated_at = 200;
  take.script_text = "fixed";
  take.node_count = 5;
  store->SaveNode(MakeNode("r2", "a", NodeStatus::kSucceeded));
  REQUIRE(store->Flush().ok());
  auto claimed = store->ClaimRun(take, 1, alive);
  REQUIRE(claimed.ok());
  CHECK(claimed->epoch == 2);
  CHECK(claimed->before.status == RunStatus::kFailed);
  CHECK(claimed->before.error == "crashed");
  REQUIRE(claimed->nodes.size() == 1);
  CHECK(claimed->nodes[0].node == "a");
  auto got = store->GetRun("r2");
  REQUIRE(got.ok());
  CHECK(got->owner.pid == take.owner.pid);
  CHECK(got->owner.start_ticks == take.owner.start_ticks);
  CHECK(got->status == RunStatus::kRunning);
  CHECK(got->script_text == "fixed");
  CHECK(got->node_count == 5);
  CHECK(got->heartbeat == 200);
  CHECK(got->finished_at == 0);
  CHECK(got->error.empty());
  CHECK(got->created_at == 100);
  CHECK(got->epoch == 2);

  CHECK(store->ClaimRun(MakeRun("nope"), 1, alive).status().kind() == ErrorKind::kPermanent);
}

TEST_CASE("ClaimRun is fenced: a stale epoch or a succeeded run is refused, stale writes too") {
  ScratchDir dir;
  auto first = OpenStore(dir.Path("keel.db"));
  auto second = OpenStore(dir.Path("keel.db"));
  auto dead = [](const Owner&, double) { return false; };
  RunRecord run = MakeRun("r1", 100);
  REQUIRE(first->CreateRun(run).ok());
  first->SaveNode(MakeNode("r1", "a", NodeStatus::kSucceeded));
  REQUIRE(first->Flush().ok());

  // `second` takes the run over; `first` still believes it holds epoch 1.
  auto taken = second->ClaimRun(run, 1, dead);
  REQUIRE(taken.ok());
  CHECK(taken->epoch == 2);
  // A claim decided on the old epoch loses.
  auto late = first->ClaimRun(run, 1, dead);
  REQUIRE_FALSE(late.ok());
  CHECK(late.status().message().find("another process") != std::string::npos);

  // `first`'s queued writes are refused and it gives up at once.
  first->SaveNode(MakeNode("r1", "b", NodeStatus::kSucceeded));
  Status flushed = first->Flush();
  REQUIRE_FALSE(flushed.ok());
  CHECK(flushed.kind() == ErrorKind::kPermanent);
  CHECK(flushed.message().find("taken over") != std::string::npos);
  CHECK(first->WriteHealth().message() == flushed.message());
  auto nodes = second->GetNodes("r1");
  REQUIRE(nodes.ok());
  CHECK(nodes->size() == 1);

  // `second` writes on, then finishes the run: nobody can claim it any more.
  second->SaveNode(MakeNode("r1", "b", NodeStatus::kSucceeded));
  second->FinishRun("r1", RunStatus::kSucceeded, "", 200);
  REQUIRE(second->Flush().ok());
  auto again = second->ClaimRun(run, 2, dead);
  REQUIRE_FALSE(again.ok());
  CHECK(again.status().message().find("already succeeded") != std::string::npos);
}

TEST_CASE("DeleteFinishedBefore removes old finished runs only") {
  ScratchDir dir;
  auto store = OpenStore(dir.Path("keel.db"));
  RunRecord odd = MakeRun("running-with-old-finish");
  odd.finished_at = 5;
  REQUIRE(store->CreateRun(odd).ok());
  for (const char* id : {"old-ok", "old-failed", "running", "recent"}) {
    REQUIRE(store->CreateRun(MakeRun(id)).ok());
    store->SaveNode(MakeNode(id, "n"));
    store->AppendEvent(MakeEvent(id, "e"));
  }
  store->FinishRun("old-ok", RunStatus::kSucceeded, "", 10);
  store->FinishRun("old-failed", RunStatus::kFailed, "x", 20);
  store->FinishRun("recent", RunStatus::kDegraded, "", 100);
  REQUIRE(store->Flush().ok());

  auto deleted = store->DeleteFinishedBefore(50);
  REQUIRE(deleted.ok());
  CHECK(*deleted == 2);
  CHECK_FALSE(store->GetRun("old-ok").ok());
  CHECK_FALSE(store->GetRun("old-failed").ok());
  CHECK(store->GetNodes("old-ok")->empty());
  CHECK(store->GetEvents("old-failed")->empty());
  for (const char* id : {"running", "recent"}) {
    CHECK(store->GetRun(id).ok());
    CHECK(store->GetNodes(id)->size() == 1);
    CHECK(store->GetEvents(id)->size() == 1);
  }
  CHECK(store->GetRun("running-with-old-finish").ok());
  CHECK(*store->DeleteFinishedBefore(50) == 0);
}

TEST_CASE("an event whose data is not valid JSON does not break the run listing") {
  ScratchDir dir;
  auto store = OpenStore(dir.Path("keel.db"));
  REQUIRE(store->CreateRun(MakeRun("good", 1)).ok());
  REQUIRE(store->CreateRun(MakeRun("bad", 2)).ok());
  store->AppendEvent(
      {"good", 0, 3, "a", "llm_call", R"({"prompt_tokens":10,"completion_tokens":5,"cost":0.5})"});
  // What an older keel wrote for a cost that was not finite.
  store->AppendEvent({"bad", 0, 3, "a", "llm_call", R"({"prompt_tokens":7,"cost":,"seconds":1})"});
  store->AppendEvent({"bad", 0, 4, "a", "llm_call", R"({"prompt_tokens":3,"cost":1})"});
  REQUIRE(store->Flush().ok());
  auto listed = store->ListRuns({});
  REQUIRE(listed.ok());
  REQUIRE(listed->size() == 2);
  CHECK((*listed)[0].run.id == "bad");
  CHECK((*listed)[0].usage.prompt_tokens == 3);  // the unreadable event counts nothing
  CHECK((*listed)[1].usage.prompt_tokens == 10);
  CHECK((*listed)[1].usage.cost == 0.5);
}

TEST_CASE("an interrupted run keeps no finish time and gc leaves it") {
  ScratchDir dir;
  auto store = OpenStore(dir.Path("keel.db"));
  REQUIRE(store->CreateRun(MakeRun("stopped", 1)).ok());
  REQUIRE(store->CreateRun(MakeRun("done", 1)).ok());
  store->FinishRun("stopped", RunStatus::kInterrupted, "interrupted by SIGTERM", 5);
  store->FinishRun("done", RunStatus::kSucceeded, "", 5);
  REQUIRE(store->Flush().ok());
  auto run = store->GetRun("stopped");
  REQUIRE(run.ok());
  CHECK(run->status == RunStatus::kInterrupted);
  CHECK(run->finished_at == 0);
  CHECK(run->updated_at == 5);
  CHECK(run->error == "interrupted by SIGTERM");
  auto deleted = store->DeleteFinishedBefore(100);
  REQUIRE(deleted.ok());
  CHECK(*deleted == 1);
  CHECK(store->GetRun("stopped").ok());
  auto listed = store->ListRuns(FilterOf(RunStatus::kInterrupted, 20));
  REQUIRE(listed.ok());
  REQUIRE(listed->size() == 1);
  CHECK((*listed)[0].run.id == "stopped");
}

TEST_CASE("a database that may not be written is read through the read-only store") {
  ScratchDir dir;
  const std::string path = dir.Path("keel.db");
  {
    auto store = OpenStore(path);
    REQUIRE(store->CreateRun(MakeRun("r1")).ok());
    store->SaveNode(MakeNode("r1", "a"));
    store->AppendEvent({"r1", 0, 3, "a", "node_succeeded", "{}"});
    REQUIRE(store->Flush().ok());
  }
  const std::string before = testing::ReadBytes(path);
  auto opened = SqliteReadOnlyStore::Open(path, 1);
  REQUIRE(opened.ok());
  auto& store = *opened;
  auto run = store->GetRun("r1");
  REQUIRE(run.ok());
  CHECK(run->id == "r1");
  auto nodes = store->GetNodes("r1");
  REQUIRE(nodes.ok());
  CHECK(nodes->size() == 1);
  auto events = store->GetEvents("r1");
  REQUIRE(events.ok());
  CHECK(events->size() == 1);
  auto listed = store->ListRuns({});
  REQUIRE(listed.ok());
  CHECK(listed->size() == 1);
  CHECK(store->ListBreakers().ok());
  // Every write is refused, naming the file; nothing is changed.
  Status refused = store->CreateRun(MakeRun("r2"));
  CHECK_FALSE(refused.ok());
  CHECK(refused.message().find(path) != std::string::npos);
  store->AppendEvent({"r1", 0, 4, "", "run_finished", "{}"});
  CHECK_FALSE(store->Flush().ok());
  CHECK(store->Flush().ok());
  CHECK_FALSE(store->DeleteFinishedBefore(100).ok());
  CHECK_FALSE(store->ResetBreakers("").ok());
  store.reset();
  CHECK(testing::ReadBytes(path) == before);
  CHECK_FALSE(testing::Exists(path + "-wal"));
  CHECK_FALSE(SqliteReadOnlyStore::Open(dir.Path("missing.db"), 1).ok());
}

}  // namespace
}  // namespace keel
