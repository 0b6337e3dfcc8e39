// DeleteFinishedBefore: finished runs older than the cut go with their
// nodes, events, signals and script versions; running, interrupted, waiting
// and queued runs stay whatever their finish time says.

#include "tests/store_conformance/conformance.h"

namespace keel::conformance {
namespace {

KEEL_CONFORMANCE_SUITE;

TEST_CASE("DeleteFinishedBefore removes old finished runs and everything of theirs" *
          doctest::timeout(60)) {
  KEEL_FRESH_BACKEND(db);
  auto store = db->Open();
  RunRecord odd = MakeRun("running-with-old-finish");
  odd.finished_at = 5;
  REQUIRE_OK(store->CreateRun(odd));
  for (const char* id : {"old-ok", "old-failed", "old-degraded", "old-cancelled", "at-cut",
                         "running", "recent", "stopped", "parked"}) {
    Create(*store, id);
    store->SaveNode(MakeNode(id, "n"));
    store->AppendEvent(MakeEvent(id, "e"));
  }
  REQUIRE_OK(store->CreateRun(QueuedRun("queued")));
  store->FinishRun("old-ok", RunStatus::kSucceeded, "", 10);
  store->FinishRun("old-failed", RunStatus::kFailed, "x", 20);
  store->FinishRun("old-degraded", RunStatus::kDegraded, "x", 30);
  store->FinishRun("at-cut", RunStatus::kSucceeded, "", 50);
  store->FinishRun("recent", RunStatus::kDegraded, "", 100);
  store->FinishRun("stopped", RunStatus::kInterrupted, "", 10);
  store->FinishRun("parked", RunStatus::kWaiting, "", 10);
  store->FinishRun("old-cancelled", RunStatus::kCancelled, "cancelled", 40);
  Flushed(*store);

  auto other = db->OpenSecond();
  CHECK(Must(other->DeleteFinishedBefore(50)) == 4);
  for (const char* id : {"old-ok", "old-failed", "old-degraded", "old-cancelled"}) {
    CAPTURE(id);
    CHECK_FALSE(store->GetRun(id).ok());
    CHECK(Must(store->GetNodes(id)).empty());
    CHECK(Must(store->GetEvents(id)).empty());
  }
  for (const char* id : {"at-cut", "running", "recent", "stopped", "parked"}) {
    CAPTURE(id);
    CHECK_OK(store->GetRun(id));
    CHECK(Must(store->GetNodes(id)).size() == 1);
    CHECK(Must(store->GetEvents(id)).size() == 1);
  }
  CHECK_OK(store->GetRun("running-with-old-finish"));
  CHECK_OK(store->GetRun("queued"));
  CHECK(Must(store->DeleteFinishedBefore(50)) == 0);
  CHECK(Must(store->DeleteFinishedBefore(1e12)) == 2);  // at-cut and recent

  // Nothing of a deleted run is left behind: its id starts afresh.
  RunRecord again = MakeRun("old-ok", 500);
  again.modules = {ScriptModule{"util", "/tmp/util.lua", "bb", "return 2"}};
  REQUIRE_OK(store->CreateRun(again));
  auto versions = Must(store->GetScriptVersions("old-ok"));
  REQUIRE(versions.size() == 1);
  REQUIRE(versions[0].modules.size() == 1);
  CHECK(versions[0].modules[0].sha256 == "bb");
  store->AppendEvent(MakeEvent("old-ok", "first"));
  Flushed(*store);
  auto events = Must(store->GetEvents("old-ok"));
  REQUIRE(events.size() == 1);
  CHECK(events[0].seq == 1);
  CHECK(RunOf(*store, "old-ok").epoch == 1);
}

TEST_CASE("DeleteFinishedBefore deletes a finished run's signals and keeps a waiting one's" *
          doctest::timeout(60)) {
  KEEL_FRESH_BACKEND(db);
  auto store = db->Open();
  Create(*store, "done");
  Create(*store, "parked");
  REQUIRE_OK(store->SendSignal("done", "go", "1", 2));
  REQUIRE_OK(store->SendSignal("parked", "go", "2", 2));
  store->FinishRun("done", RunStatus::kSucceeded, "", 10);
  store->FinishRun("parked", RunStatus::kWaiting, "", 10);
  Flushed(*store);
  CHECK(Must(store->DeleteFinishedBefore(50)) == 1);
  CHECK(Must(store->CountState()).signals_pending == 1);
  Create(*store, "done");
  CHECK_FALSE(Must(store->TakeSignal("done", "go", "w", 60)).has_value());
  CHECK(Must(store->TakeSignal("parked", "go", "w", 60)) == std::optional<std::string>("2"));
}

}  // namespace
}  // namespace keel::conformance
