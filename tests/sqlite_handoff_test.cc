// The SQLite store's hand-off to `keel serve`: which runs ListRunsToStart
// finds (queued oldest first, waiting runs whose signal came or timer is
// due, stopped runs on request), HandOffRun decided once and fenced by the
// epoch, ReleaseRun only for a run nobody claimed, AppendEventOnce once.

#include <doctest/doctest.h>

#include <algorithm>

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

RunRecord Queued(const std::string& id, double created_at) {
  RunRecord run = MakeRun(id, created_at);
  run.status = RunStatus::kQueued;
  run.owner = {0, "here", 0};
  return run;
}

// A run parked on wait node "w", recorded as waiting for `waiting_for`.
void Park(SqliteStore* store, const std::string& id, const std::string& waiting_for) {
  REQUIRE(store->CreateRun(MakeRun(id)).ok());
  NodeRecord wait = MakeNode(id, "w", NodeStatus::kWaiting);
  wait.output_json = waiting_for;
  store->SaveNode(wait);
  store->FinishRun(id, RunStatus::kWaiting, "", 2);
  REQUIRE(store->Flush().ok());
}

std::vector<std::string> Found(const std::vector<Store::StartCandidate>& found,
                               const std::string& reason) {
  std::vector<std::string> ids;
  for (const auto& c : found) {
    if (c.reason == reason) ids.push_back(c.run.id);
  }
  return ids;
}

int EventsOf(SqliteStore* store, const std::string& id, const std::string& kind) {
  auto events = store->GetEvents(id);
  REQUIRE(events.ok());
  return static_cast<int>(std::count_if(events->begin(), events->end(),
                                        [&](const EventRecord& e) { return e.kind == kind; }));
}

}  // namespace

TEST_CASE("ListRunsToStart: queued oldest first, due waits, stopped runs when asked" *
          doctest::timeout(30)) {
  ScratchDir dir;
  auto store = OpenStore(dir.Path("keel.db"));
  REQUIRE(store->CreateRun(Queued("q2", 20)).ok());
  REQUIRE(store->CreateRun(Queued("q1", 10)).ok());
  Park(store.get(), "signalled", R"({"signal":"go"})");
  Park(store.get(), "unsignalled", R"({"signal":"go"})");
  Park(store.get(), "due", R"({"due":50})");
  Park(store.get(), "later", R"({"due":500})");
  REQUIRE(store->SendSignal("signalled", "go", "null", 3).ok());
  REQUIRE(store->SendSignal("unsignalled", "other", "null", 3).ok());
  REQUIRE(store->CreateRun(MakeRun("running")).ok());
  REQUIRE(store->CreateRun(MakeRun("stopped")).ok());
  store->FinishRun("stopped", RunStatus::kInterrupted, "", 4);
  REQUIRE(store->CreateRun(MakeRun("done")).ok());
  store->FinishRun("done", RunStatus::kSucceeded, "", 4);
  REQUIRE(store->Flush().ok());

  auto found = store->ListRunsToStart(/*now=*/100, /*stopped=*/false, 10);
  REQUIRE(found.ok());
  CHECK(Found(*found, "queued") == std::vector<std::string>{"q1", "q2"});
  CHECK(Found(*found, "signal") == std::vector<std::string>{"signalled"});
  CHECK(Found(*found, "timer") == std::vector<std::string>{"due"});
  CHECK(Found(*found, "interrupted").empty());
  CHECK(Found(*found, "running").empty());
  found = store->ListRunsToStart(100, /*stopped=*/true, 10);
  REQUIRE(found.ok());
  CHECK(Found(*found, "interrupted") == std::vector<std::string>{"stopped"});
  CHECK(Found(*found, "running") == std::vector<std::string>{"running"});
  // A signal taken by another wait does not count.
  REQUIRE(store->SendSignal("unsignalled", "go", "null", 5).ok());
  RunRecord run = *store->GetRun("unsignalled");
  REQUIRE(store->ClaimRun(run, run.epoch, kDead).ok());
  REQUIRE(store->TakeSignal("unsignalled", "go", "elsewhere", 6).ok());
  store->FinishRun("unsignalled", RunStatus::kWaiting, "", 7);
  REQUIRE(store->Flush().ok());
  found = store->ListRunsToStart(100, false, 10);
  CHECK(Found(*found, "signal") == std::vector<std::string>{"signalled"});
}

TEST_CASE("HandOffRun is decided once, fenced by the epoch and the owner" *
          doctest::timeout(30)) {
  ScratchDir dir;
  auto a = OpenStore(dir.Path("keel.db"));
  auto b = OpenStore(dir.Path("keel.db"));
  REQUIRE(a->CreateRun(Queued("q", 1)).ok());
  RunRecord read = *a->GetRun("q");
  const Owner server{4242, "server-host", 7};
  EventRecord note{"q", 0, 5, "", "auto_resumed", R"({"count":1})"};
  auto first = a->HandOffRun("q", read.epoch, server, 5, note, kDead);
  REQUIRE(first.ok());
  CHECK(*first == read.epoch + 1);
  // The other server read the same epoch: refused, nothing written.
  auto second = b->HandOffRun("q", read.epoch, server, 6, note, kDead);
  CHECK(second.status().kind() == ErrorKind::kPermanent);
  CHECK(EventsOf(b.get(), "q", "auto_resumed") == 1);
  RunRecord now = *b->GetRun("q");
  CHECK(now.owner.pid == 4242);
  CHECK(now.status == RunStatus::kQueued);
  // At the new epoch but with the owner alive: refused.
  CHECK_FALSE(b->HandOffRun("q", now.epoch, server, 7, {}, kAlive).ok());

  // The child claims at the hand-off epoch; a release after that is refused.
  RunRecord claim = now;
  claim.owner = {99, "server-host", 1};
  REQUIRE(b->ClaimRun(claim, *first, kDead).ok());
  CHECK_FALSE(a->ReleaseRun("q", *first, {0, "server-host", 0}, 8, "").ok());
  CHECK(a->GetRun("q")->status == RunStatus::kRunning);
}

TEST_CASE("ReleaseRun gives back a run nobody claimed; a queued one may be failed" *
          doctest::timeout(30)) {
  ScratchDir dir;
  auto store = OpenStore(dir.Path("keel.db"));
  REQUIRE(store->CreateRun(Queued("q", 1)).ok());
  Park(store.get(), "w", R"({"due":1})");
  const Owner server{4242, "server-host", 7};
  auto q_epoch = store->HandOffRun("q", 1, server, 5, {}, kDead);
  auto w_epoch = store->HandOffRun("w", store->GetRun("w")->epoch, server, 5, {}, kDead);
  REQUIRE(q_epoch.ok());
  REQUIRE(w_epoch.ok());
  REQUIRE(store->ReleaseRun("q", *q_epoch, {0, "server-host", 0}, 6, "could not start").ok());
  REQUIRE(store->ReleaseRun("w", *w_epoch, {0, "server-host", 0}, 6, "").ok());
  RunRecord q = *store->GetRun("q");
  CHECK(q.status == RunStatus::kFailed);
  CHECK(q.error == "could not start");
  CHECK(q.finished_at == 6);
  CHECK(q.epoch == *q_epoch + 1);
  RunRecord w = *store->GetRun("w");
  CHECK(w.status == RunStatus::kWaiting);
  CHECK(w.owner.pid == 0);
  CHECK(w.finished_at == 0);
  // Twice: the epoch moved on.
  CHECK_FALSE(store->ReleaseRun("w", *w_epoch, {0, "server-host", 0}, 7, "").ok());
}

TEST_CASE("HandOffRun refuses a cancelled run; AppendEventOnce appends once" *
          doctest::timeout(30)) {
  ScratchDir dir;
  auto store = OpenStore(dir.Path("keel.db"));
  REQUIRE(store->CreateRun(Queued("q", 1)).ok());
  REQUIRE(store->CancelRun("q", 2, kDead).ok());
  RunRecord q = *store->GetRun("q");
  CHECK_FALSE(store->HandOffRun("q", q.epoch, {1, "h", 1}, 3, {}, kDead).ok());
  EventRecord note{"q", 0, 4, "", "auto_resume_limit", "{}"};
  REQUIRE(store->AppendEventOnce(note).ok());
  REQUIRE(store->AppendEventOnce(note).ok());
  CHECK(EventsOf(store.get(), "q", "auto_resume_limit") == 1);
  // gc never takes a queued run.
  REQUIRE(store->CreateRun(Queued("q2", 1)).ok());
  REQUIRE(store->DeleteFinishedBefore(1e12).ok());
  CHECK(store->GetRun("q2").ok());
}

}  // namespace keel
