// Starting and supervising runs: which runs ListRunsToStart finds, HandOffRun
// decided once and fenced by the epoch and the owner, ReleaseRun only for a
// run nobody claimed, AppendEventOnce once across stores.

#include <atomic>
#include <thread>

#include "engine/mutex.h"

#include "tests/store_conformance/conformance.h"

namespace keel::conformance {
namespace {

KEEL_CONFORMANCE_SUITE;

// A run parked on wait node "w", recorded as waiting for `waiting_for`.
void Park(Store& store, const std::string& id, const std::string& waiting_for) {
  Create(store, id);
  NodeRecord wait = MakeNode(id, "w", NodeStatus::kWaiting);
  wait.output_json = waiting_for;
  store.SaveNode(wait);
  store.FinishRun(id, RunStatus::kWaiting, "", 2);
  Flushed(store);
}

std::vector<std::string> Found(const std::vector<Store::StartCandidate>& found,
                               const std::string& reason) {
  std::vector<std::string> ids;
  for (const auto& c : found) {
    if (c.reason == reason) ids.push_back(c.run.id);
  }
  return ids;
}

TEST_CASE("ListRunsToStart: queued oldest first, due waits, stopped runs when asked" *
          doctest::timeout(60)) {
  KEEL_FRESH_BACKEND(db);
  auto store = db->Open();
  REQUIRE_OK(store->CreateRun(QueuedRun("q2", 20)));
  REQUIRE_OK(store->CreateRun(QueuedRun("q1", 10)));
  REQUIRE_OK(store->CreateRun(QueuedRun("q3", 30)));
  Park(*store, "signalled", R"({"signal":"go"})");
  Park(*store, "unsignalled", R"({"signal":"go"})");
  Park(*store, "due", R"({"due":50})");
  Park(*store, "later", R"({"due":500})");
  REQUIRE_OK(store->SendSignal("signalled", "go", "null", 3));
  REQUIRE_OK(store->SendSignal("unsignalled", "other", "null", 3));
  Create(*store, "running");
  Create(*store, "stopped");
  store->FinishRun("stopped", RunStatus::kInterrupted, "", 4);
  Create(*store, "done");
  store->FinishRun("done", RunStatus::kSucceeded, "", 4);
  store->AppendEvent(MakeEvent("q1", "auto_resumed"));
  store->AppendEvent(MakeEvent("q1", "auto_resumed"));
  store->AppendEvent(MakeEvent("q1", "auto_resume_limit"));
  Flushed(*store);

  auto other = db->OpenSecond();
  auto found = Must(other->ListRunsToStart(/*now=*/100, /*stopped=*/false, 10));
  CHECK(Found(found, "queued") == std::vector<std::string>{"q1", "q2", "q3"});
  CHECK(Found(found, "signal") == std::vector<std::string>{"signalled"});
  CHECK(Found(found, "timer") == std::vector<std::string>{"due"});
  CHECK(Found(found, "interrupted").empty());
  CHECK(Found(found, "running").empty());
  for (const auto& c : found) {
    CHECK(c.run.script_text.empty());
    if (c.run.id == "q1") {
      CHECK(c.auto_resumes == 2);
      CHECK(c.limit_noted);
      CHECK(c.run.status == RunStatus::kQueued);
    } else {
      CHECK(c.auto_resumes == 0);
      CHECK_FALSE(c.limit_noted);
    }
  }
  found = Must(other->ListRunsToStart(100, /*stopped=*/true, 10));
  CHECK(Found(found, "interrupted") == std::vector<std::string>{"stopped"});
  CHECK(Found(found, "running") == std::vector<std::string>{"running"});
  // At most `limit` of each.
  found = Must(other->ListRunsToStart(100, false, 2));
  CHECK(Found(found, "queued") == std::vector<std::string>{"q1", "q2"});
  // A timer not due yet.
  found = Must(other->ListRunsToStart(49, false, 10));
  CHECK(Found(found, "timer").empty());

  // A signal taken by another wait does not count.
  REQUIRE_OK(store->SendSignal("unsignalled", "go", "null", 5));
  RunRecord run = RunOf(*store, "unsignalled");
  REQUIRE_OK(store->ClaimRun(run, run.epoch, kDead));
  REQUIRE_OK(store->TakeSignal("unsignalled", "go", "elsewhere", 6));
  store->FinishRun("unsignalled", RunStatus::kWaiting, "", 7);
  Flushed(*store);
  found = Must(other->ListRunsToStart(100, false, 10));
  CHECK(Found(found, "signal") == std::vector<std::string>{"signalled"});
}

TEST_CASE("HandOffRun is decided once, fenced by the epoch and the owner" *
          doctest::timeout(60)) {
  KEEL_FRESH_BACKEND(db);
  auto a = db->Open();
  auto b = db->OpenSecond();
  REQUIRE_OK(a->CreateRun(QueuedRun("q", 1)));
  RunRecord read = RunOf(*a, "q");
  const Owner server{4242, "server-host", 7};
  EventRecord note{"q", 0, 5, "", "auto_resumed", R"({"count":1})"};
  auto first = a->HandOffRun("q", read.epoch, server, 5, note, kDead);
  REQUIRE_MESSAGE(first.ok(), first.status().ToString());
  CHECK(*first == read.epoch + 1);
  // The other server read the same epoch: refused, nothing written.
  auto second = b->HandOffRun("q", read.epoch, server, 6, note, kDead);
  CHECK(second.status().kind() == ErrorKind::kPermanent);
  CHECK(CountKind(*b, "q", "auto_resumed") == 1);
  RunRecord now = RunOf(*b, "q");
  CHECK(now.owner.pid == 4242);
  CHECK(now.owner.host == "server-host");
  CHECK(now.owner.start_ticks == 7);
  CHECK(now.status == RunStatus::kQueued);
  CHECK(now.epoch == *first);
  auto events = Must(b->GetEvents("q"));
  REQUIRE(events.size() == 1);
  CHECK(events[0].data_json == R"({"count":1})");
  CHECK(events[0].seq == 1);
  // At the new epoch but with the owner alive: refused.
  CHECK_FALSE(b->HandOffRun("q", now.epoch, server, 7, {}, kAlive).ok());
  // An unknown run.
  CHECK(b->HandOffRun("nope", 1, server, 7, {}, kDead).status().kind() == ErrorKind::kPermanent);

  // The child claims at the hand-off epoch; a release after that is refused.
  RunRecord claim = now;
  claim.owner = {99, "server-host", 1};
  REQUIRE_OK(b->ClaimRun(claim, *first, kDead));
  CHECK_FALSE(a->ReleaseRun("q", *first, {0, "server-host", 0}, 8, "").ok());
  CHECK(RunOf(*a, "q").status == RunStatus::kRunning);
  CHECK(RunOf(*a, "q").owner.pid == 99);
}

TEST_CASE("two stores racing to hand off one run: exactly one wins" * doctest::timeout(120)) {
  KEEL_FRESH_BACKEND(db);
  auto a = db->Open();
  auto b = db->OpenSecond();
  constexpr int kRuns = 20;
  for (int i = 0; i < kRuns; ++i) {
    REQUIRE_OK(a->CreateRun(QueuedRun("q" + std::to_string(i), i)));
  }
  std::atomic<int> won{0}, errors{0};
  Mutex mu;
  std::string refusal;  // a refusal's message, for a failure to show
  auto race = [&](Store* store, int pid) {
    for (int i = 0; i < kRuns; ++i) {
      const std::string id = "q" + std::to_string(i);
      EventRecord note{id, 0, 5, "", "auto_resumed", "{}"};
      auto handed = store->HandOffRun(id, 1, Owner{pid, "h", 1}, 5, note, kDead);
      if (handed.ok()) {
        ++won;
        continue;
      }
      {
        MutexLock lock(&mu);
        refusal = handed.status().ToString();
      }
      if (handed.status().kind() != ErrorKind::kPermanent) {
        ++errors;
      }
    }
  };
  std::thread ta(race, a.get(), 1);
  std::thread tb(race, b.get(), 2);
  ta.join();
  tb.join();
  CHECK_MESSAGE(won == kRuns, "a refusal: " << refusal);
  CHECK(errors == 0);
  for (int i = 0; i < kRuns; ++i) {
    const std::string id = "q" + std::to_string(i);
    CHECK(CountKind(*a, id, "auto_resumed") == 1);
    CHECK(RunOf(*a, id).epoch == 2);
  }
}

TEST_CASE("ReleaseRun gives back a run nobody claimed; a queued one may be failed" *
          doctest::timeout(60)) {
  KEEL_FRESH_BACKEND(db);
  auto store = db->Open();
  REQUIRE_OK(store->CreateRun(QueuedRun("q", 1)));
  Park(*store, "w", R"({"due":1})");
  const Owner server{4242, "server-host", 7};
  auto q_epoch = store->HandOffRun("q", 1, server, 5, {}, kDead);
  auto w_epoch = store->HandOffRun("w", RunOf(*store, "w").epoch, server, 5, {}, kDead);
  REQUIRE_OK(q_epoch);
  REQUIRE_OK(w_epoch);
  CHECK(Must(store->GetEvents("q")).empty());  // an empty kind appends nothing
  auto other = db->OpenSecond();
  REQUIRE_OK(other->ReleaseRun("q", *q_epoch, {0, "server-host", 0}, 6, "could not start"));
  REQUIRE_OK(other->ReleaseRun("w", *w_epoch, {0, "server-host", 0}, 6, ""));
  RunRecord q = RunOf(*store, "q");
  CHECK(q.status == RunStatus::kFailed);
  CHECK(q.error == "could not start");
  CHECK(q.finished_at == 6);
  CHECK(q.epoch == *q_epoch + 1);
  RunRecord w = RunOf(*store, "w");
  CHECK(w.status == RunStatus::kWaiting);
  CHECK(w.owner.pid == 0);
  CHECK(w.owner.host == "server-host");
  CHECK(w.finished_at == 0);
  CHECK(w.epoch == *w_epoch + 1);
  // Twice: the epoch moved on.
  CHECK(other->ReleaseRun("w", *w_epoch, {0, "server-host", 0}, 7, "").kind() ==
        ErrorKind::kPermanent);
}

TEST_CASE("HandOffRun refuses a cancelled run; AppendEventOnce appends once" *
          doctest::timeout(60)) {
  KEEL_FRESH_BACKEND(db);
  auto store = db->Open();
  REQUIRE_OK(store->CreateRun(QueuedRun("q", 1)));
  REQUIRE_OK(store->CancelRun("q", 2, kDead));
  RunRecord q = RunOf(*store, "q");
  CHECK_FALSE(store->HandOffRun("q", q.epoch, {1, "h", 1}, 3, {}, kDead).ok());

  Create(*store, "live");
  REQUIRE(Must(store->CancelRun("live", 2, kAlive)) == CancelOutcome::kRequested);
  RunRecord live = RunOf(*store, "live");
  CHECK_FALSE(store->HandOffRun("live", live.epoch, {1, "h", 1}, 3, {}, kDead).ok());

  EventRecord note{"q", 0, 4, "", "auto_resume_limit", R"({"limit":3})"};
  auto other = db->OpenSecond();
  REQUIRE_OK(store->AppendEventOnce(note));
  REQUIRE_OK(other->AppendEventOnce(note));
  REQUIRE_OK(store->AppendEventOnce(note));
  CHECK(CountKind(*store, "q", "auto_resume_limit") == 1);
  for (const EventRecord& e : Must(other->GetEvents("q"))) {
    if (e.kind != "auto_resume_limit") continue;
    CHECK(e.data_json == R"({"limit":3})");
    CHECK(e.ts == 4);
  }
}

TEST_CASE("AppendEventOnce from two stores at once appends each note once" *
          doctest::timeout(120)) {
  KEEL_FRESH_BACKEND(db);
  auto a = db->Open();
  auto b = db->OpenSecond();
  constexpr int kRuns = 20;
  for (int i = 0; i < kRuns; ++i) REQUIRE_OK(a->CreateRun(QueuedRun("q" + std::to_string(i))));
  std::atomic<int> errors{0};
  auto note = [&](Store* store) {
    for (int i = 0; i < kRuns; ++i) {
      EventRecord e{"q" + std::to_string(i), 0, 4, "", "auto_resume_limit", "{}"};
      if (!store->AppendEventOnce(e).ok()) ++errors;
    }
  };
  std::thread ta(note, a.get());
  std::thread tb(note, b.get());
  ta.join();
  tb.join();
  CHECK(errors == 0);
  for (int i = 0; i < kRuns; ++i) {
    CHECK(CountKind(*a, "q" + std::to_string(i), "auto_resume_limit") == 1);
  }
}

}  // namespace
}  // namespace keel::conformance
