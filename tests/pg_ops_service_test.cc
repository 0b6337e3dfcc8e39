// The PostgreSQL store's hand-off to `keel serve`, alerts outbox and
// schedule ticks (pg_handoff.h, pg_alerts.h, pg_schedules.h) against a real
// server: what each finds and writes, as the SQLite store does, and the
// races — two claimers of alerts never take one row, a tick raced by many
// threads is recorded once, an event noted once by many is appended once.

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <latch>
#include <set>
#include <thread>

#include "store/postgres/pg_alerts.h"
#include "store/postgres/pg_breakers.h"
#include "store/postgres/pg_handoff.h"
#include "store/postgres/pg_schedules.h"
#include "store/postgres/pg_waits.h"
#include "tests/pg_ops_util.h"

namespace keel {
namespace {

using testing::PgConnect;
using testing::PgEvent;
using testing::PgNode;
using testing::PgRun;
using testing::PgValue;
using testing::PutEvents;
using testing::PutNode;
using testing::PutRun;

const auto kAlive = [](const Owner&, double) { return true; };
const auto kDead = [](const Owner&, double) { return false; };

// Runs `body(connection, i)` on `n` threads at once, each on its own connection.
template <typename Body>
void OnThreads(const std::string& url, int n, Body body) {
  std::latch start(n);
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      auto conn = pg::Connection::Open(url);
      start.arrive_and_wait();
      if (conn.ok()) body(**conn, i);
    });
  }
  for (auto& t : threads) t.join();
}

void Park(pg::Connection& conn, const std::string& id, const std::string& waiting_for,
          double created_at) {
  PutRun(conn, PgRun(id, created_at, RunStatus::kWaiting));
  NodeRecord wait = PgNode(id, "w", NodeStatus::kWaiting);
  wait.output_json = waiting_for;
  PutNode(conn, wait);
}

TEST_CASE("ListRunsToStart finds queued runs, due waits and stopped runs" * doctest::timeout(60)) {
  KEEL_PG_DB_OR_SKIP(db, "to_start");
  PutRun(db, PgRun("q-late", 5, RunStatus::kQueued));
  PutRun(db, PgRun("q-early", 3, RunStatus::kQueued));
  PutEvents(db, {PgEvent("q-late", "auto_resumed"), PgEvent("q-late", "auto_resumed"),
                 PgEvent("q-late", "auto_resume_limit")});
  Park(db, "w-signal", R"({"signal":"go","due":0})", 1);
  REQUIRE(pg::SendSignal(db, "w-signal", "go", "{}", 1).ok());
  Park(db, "w-timer", R"({"signal":"never","due":10})", 2);
  Park(db, "w-later", R"({"signal":"never","due":100})", 3);
  Park(db, "w-taken", R"({"signal":"gone","due":0})", 4);
  REQUIRE(pg::SendSignal(db, "w-taken", "gone", "{}", 1).ok());
  REQUIRE(pg::TakeSignal(db, "w-taken", "gone", "other", 1, 1).ok());
  // A signal the waiting node itself took before (it stopped before its
  // record said so) still lets it go on.
  Park(db, "w-self", R"({"signal":"mine","due":0})", 2.5);
  REQUIRE(pg::SendSignal(db, "w-self", "mine", "{}", 1).ok());
  REQUIRE(pg::TakeSignal(db, "w-self", "mine", "w", 1, 1).ok());
  // A damaged record reads as waiting for nothing, without failing the look.
  Park(db, "w-damaged", "{not json", 0.5);
  RunRecord stale = PgRun("stale", 1);
  stale.heartbeat = 2;
  stale.updated_at = 9;
  PutRun(db, stale);
  PutRun(db, PgRun("broke", 5, RunStatus::kInterrupted));

  auto found = pg::ListRunsToStart(db, 20, false, 10);
  REQUIRE_MESSAGE(found.ok(), found.status().message());
  std::vector<std::string> seen;
  for (const auto& c : *found) seen.push_back(c.run.id + ":" + c.reason);
  CHECK(seen == std::vector<std::string>{"q-early:queued", "q-late:queued", "w-signal:signal",
                                         "w-timer:timer", "w-self:signal"});
  CHECK(found->at(1).auto_resumes == 2);
  CHECK(found->at(1).limit_noted);
  CHECK(found->at(0).auto_resumes == 0);
  CHECK(!found->at(0).limit_noted);
  CHECK(found->at(0).run.script_text.empty());

  auto stopped = pg::ListRunsToStart(db, 20, true, 1);
  REQUIRE(stopped.ok());
  seen.clear();
  for (const auto& c : *stopped) seen.push_back(c.run.id + ":" + c.reason);
  // One of each; the stalest stopped run is "broke" (5) before "stale" (9).
  CHECK(seen == std::vector<std::string>{"q-early:queued", "w-signal:signal", "broke:interrupted"});
}

TEST_CASE("ListRunsToStart leaves distributed runs to their workers" * doctest::timeout(60)) {
  KEEL_PG_DB_OR_SKIP(db, "to_start_distributed");
  Park(db, "d-signal", R"({"signal":"go","due":0})", 1);
  REQUIRE(pg::SendSignal(db, "d-signal", "go", "{}", 1).ok());
  Park(db, "d-timer", R"({"signal":"never","due":10})", 2);
  RunRecord running = PgRun("d-running", 1);
  running.heartbeat = 2;
  PutRun(db, running);
  REQUIRE(db.Exec("UPDATE runs SET distributed = true", {}, "test").ok());
  Park(db, "local", R"({"signal":"never","due":10})", 3);

  auto found = pg::ListRunsToStart(db, 20, true, 10);
  REQUIRE_MESSAGE(found.ok(), found.status().message());
  std::vector<std::string> seen;
  for (const auto& c : *found) seen.push_back(c.run.id + ":" + c.reason);
  CHECK(seen == std::vector<std::string>{"local:timer"});
}

TEST_CASE("HandOffRun is fenced by the epoch, the owner and cancellation" * doctest::timeout(60)) {
  KEEL_PG_DB_OR_SKIP(db, "handoff");
  const Owner server{42, "srv", 7};
  EventRecord note = PgEvent("r", "auto_resumed");
  auto missing = pg::HandOffRun(db, "nope", 1, server, 10, note, kDead);
  CHECK(missing.status().message().find("no run 'nope'") != std::string::npos);
  PutRun(db, PgRun("r"));
  auto stale = pg::HandOffRun(db, "r", 3, server, 10, note, kDead);
  CHECK(stale.status().message() == "run r was taken over by another process meanwhile");
  auto live = pg::HandOffRun(db, "r", 1, server, 10, note, kAlive);
  CHECK(live.status().message() == "run r is owned by the live process 1@elsewhere");
  auto handed = pg::HandOffRun(db, "r", 1, server, 10, note, kDead);
  REQUIRE_MESSAGE(handed.ok(), handed.status().message());
  CHECK(*handed == 2);
  CHECK(PgValue(db,
                "SELECT epoch || ' ' || owner_pid || '@' || owner_host || ' ' || "
                "owner_start || ' ' || heartbeat FROM runs WHERE id = 'r'") == "2 42@srv 7 10");
  CHECK(PgValue(db, "SELECT string_agg(seq || kind, ',') FROM events WHERE run_id = 'r'") ==
        "1auto_resumed");
  auto twice = pg::HandOffRun(db, "r", 1, server, 11, note, kDead);
  CHECK(twice.status().kind() == ErrorKind::kPermanent);

  // No event when its kind is empty.
  PutRun(db, PgRun("quiet"));
  REQUIRE(pg::HandOffRun(db, "quiet", 1, server, 10, EventRecord{}, kDead).ok());
  CHECK(PgValue(db, "SELECT count(*) FROM events WHERE run_id = 'quiet'") == "0");

  PutRun(db, PgRun("asked"));
  REQUIRE(pg::CancelRun(db, "asked", 5, kAlive).ok());
  auto asked = pg::HandOffRun(db, "asked", 1, server, 10, note, kDead);
  CHECK(asked.status().message() == "run asked was cancelled");
}

TEST_CASE("ReleaseRun gives back only a run nobody claimed since" * doctest::timeout(60)) {
  KEEL_PG_DB_OR_SKIP(db, "release");
  const Owner none{0, "", 0};
  PutRun(db, PgRun("r"));
  REQUIRE(pg::HandOffRun(db, "r", 1, Owner{42, "srv", 7}, 10, EventRecord{}, kDead).ok());
  Status claimed = pg::ReleaseRun(db, "r", 1, none, 11, "");
  CHECK(claimed.message() == "run r was claimed or changed since it was handed over");
  REQUIRE(pg::ReleaseRun(db, "r", 2, none, 11, "").ok());
  CHECK(PgValue(db,
                "SELECT epoch || ' ' || owner_pid || ' ' || status || ' ' || updated_at || "
                "' ' || finished_at FROM runs WHERE id = 'r'") == "3 0 running 11 0");
  PutRun(db, PgRun("f"));
  REQUIRE(pg::ReleaseRun(db, "f", 1, none, 12.5, "the child never started").ok());
  CHECK(PgValue(db,
                "SELECT status || ' ' || error || ' ' || finished_at FROM runs WHERE id = "
                "'f'") == "failed the child never started 12.5");
}

TEST_CASE("AppendEventOnce appends an event of a kind once, however many race" *
          doctest::timeout(120)) {
  KEEL_PG_DB_OR_SKIP(db, "event_once");
  PutRun(db, PgRun("r"));
  REQUIRE(pg::AppendEventOnce(db, PgEvent("r", "auto_resume_limit")).ok());
  REQUIRE(pg::AppendEventOnce(db, PgEvent("r", "auto_resume_limit")).ok());
  CHECK(PgValue(db, "SELECT count(*) FROM events WHERE run_id = 'r'") == "1");
  Status missing = pg::AppendEventOnce(db, PgEvent("nope", "x"));
  CHECK(missing.kind() == ErrorKind::kPermanent);

  for (int round = 0; round < 5; ++round) {
    const std::string kind = "note" + std::to_string(round);
    std::atomic<int> failed{0};
    OnThreads(db_url, 8, [&](pg::Connection& conn, int) {
      if (!pg::AppendEventOnce(conn, PgEvent("r", kind)).ok()) ++failed;
    });
    CHECK(failed.load() == 0);
    CHECK(PgValue(db, "SELECT count(*) FROM events WHERE run_id = 'r' AND kind = $1", {kind}) ==
          "1");
  }
  CHECK(PgValue(db, "SELECT max(seq) || ' ' || count(*) FROM events WHERE run_id = 'r'") == "6 6");
}

TEST_CASE("ScanAlerts starts at the first scan and adds each failure and opening once" *
          doctest::timeout(60)) {
  KEEL_PG_DB_OR_SKIP(db, "alerts_scan");
  RunRecord old = PgRun("old", 1, RunStatus::kFailed);
  old.finished_at = 50;
  PutRun(db, old);
  auto first = pg::ScanAlerts(db, 100, 30);
  REQUIRE_MESSAGE(first.ok(), first.status().message());
  CHECK(*first == 0);
  CHECK(PgValue(db,
                "SELECT string_agg(name || '=' || position, ',' ORDER BY name) FROM "
                "alert_cursors") == "breakers=100,runs=100,since=100");

  RunRecord failed = PgRun("f", 1, RunStatus::kFailed);
  failed.finished_at = 101.5;
  failed.error = "boom";
  PutRun(db, failed);
  RunRecord degraded = PgRun("d", 1, RunStatus::kDegraded);
  degraded.finished_at = 102;
  PutRun(db, degraded);
  RunRecord fine = PgRun("ok", 1, RunStatus::kSucceeded);
  fine.finished_at = 102;
  PutRun(db, fine);
  REQUIRE(pg::UpdateBreaker(
              db, "llm",
              [](BreakerSnapshot& s) {
                s.state = BreakerState::kOpen;
                s.opened_at = 103.25;
              },
              103.25)
              .ok());

  auto added = pg::ScanAlerts(db, 110, 30);
  REQUIRE_MESSAGE(added.ok(), added.status().message());
  CHECK(*added == 3);
  CHECK(PgValue(db,
                "SELECT string_agg(dedupe_key || '|' || kind || '|' || status || '|' || "
                "error || '|' || at, ',' ORDER BY id) FROM alert_outbox") ==
        "run:f:failed:e1|run_failed|failed|boom|101.5,run:d:degraded:e1|run_degraded|degraded||"
        "102,breaker:llm:103.250000|breaker_open|open||103.25");
  auto again = pg::ScanAlerts(db, 111, 30);
  REQUIRE(again.ok());
  CHECK(*again == 0);
  CHECK(PgValue(db, "SELECT position FROM alert_cursors WHERE name = 'runs'") == "102");
}

TEST_CASE("ClaimAlerts leases due rows; CompleteAlert needs the lease" * doctest::timeout(60)) {
  KEEL_PG_DB_OR_SKIP(db, "alerts_claim");
  for (int i = 0; i < 3; ++i) {
    REQUIRE(db.Exec("INSERT INTO alert_outbox (dedupe_key, kind, run_id, at, created_at, next_at) "
                    "VALUES ($1, 'run_failed', $2, $3, $3, $3)",
                    {"k" + std::to_string(i), "r" + std::to_string(i), std::to_string(10 - i)},
                    "adding")
                .ok());
  }
  auto a = pg::ClaimAlerts(db, "A", 20, 30, 10);
  REQUIRE_MESSAGE(a.ok(), a.status().message());
  REQUIRE(a->size() == 3);
  CHECK(a->at(0).dedupe_key == "k2");  // next_at 8 first
  CHECK(a->at(2).dedupe_key == "k0");
  CHECK(a->at(0).run_id == "r2");
  CHECK(a->at(0).at == 8);
  auto b = pg::ClaimAlerts(db, "B", 25, 30, 10);
  REQUIRE(b.ok());
  CHECK(b->empty());

  auto wrong = pg::CompleteAlert(db, a->at(0).id, "B", true, 26, 0, "");
  REQUIRE(wrong.ok());
  CHECK(!*wrong);
  auto delivered = pg::CompleteAlert(db, a->at(0).id, "A", true, 26, 0, "");
  REQUIRE(delivered.ok());
  CHECK(*delivered);
  auto failed = pg::CompleteAlert(db, a->at(1).id, "A", false, 26, 40, "503");
  REQUIRE(failed.ok());
  CHECK(*failed);
  CHECK(PgValue(db,
                "SELECT attempts || ' ' || next_at || ' ' || lease_owner || ' ' || "
                "last_error FROM alert_outbox WHERE id = $1",
                {std::to_string(a->at(1).id)}) == "1 40  503");

  // The lease of the third ran out at 50: B takes it; the failed one is due at 40.
  auto later = pg::ClaimAlerts(db, "B", 50, 30, 10);
  REQUIRE(later.ok());
  REQUIRE(later->size() == 2);
  CHECK(later->at(0).dedupe_key == "k0");
  CHECK(later->at(1).dedupe_key == "k1");
  CHECK(later->at(1).attempts == 1);
  auto late = pg::CompleteAlert(db, a->at(2).id, "A", true, 51, 0, "");
  REQUIRE(late.ok());
  CHECK(!*late);
}

TEST_CASE("Two claimers of alerts never take one row twice" * doctest::timeout(300)) {
  KEEL_PG_DB_OR_SKIP(db, "alerts_race");
  constexpr int kRows = 300;
  REQUIRE(db.Exec("INSERT INTO alert_outbox (dedupe_key, kind, at, created_at, next_at) "
                  "SELECT 'k' || i, 'run_failed', i, i, 1 FROM generate_series(1, $1) i",
                  {std::to_string(kRows)}, "adding")
              .ok());
  std::vector<std::vector<int64_t>> taken(2);
  std::atomic<int> failed{0};
  OnThreads(db_url, 2, [&](pg::Connection& conn, int i) {
    for (;;) {
      auto rows = pg::ClaimAlerts(conn, "claimer" + std::to_string(i), 10, 1000, 7);
      if (!rows.ok()) {
        ++failed;
        return;
      }
      if (rows->empty()) return;
      for (const auto& row : *rows) taken[static_cast<size_t>(i)].push_back(row.id);
    }
  });
  CHECK(failed.load() == 0);
  std::set<int64_t> all(taken[0].begin(), taken[0].end());
  size_t both = 0;
  for (int64_t id : taken[1]) both += all.count(id);
  all.insert(taken[1].begin(), taken[1].end());
  CHECK(both == 0);
  CHECK(taken[0].size() + taken[1].size() == static_cast<size_t>(kRows));
  CHECK(all.size() == static_cast<size_t>(kRows));
  MESSAGE("claimer 0 took " << taken[0].size() << ", claimer 1 took " << taken[1].size());
}

TEST_CASE("RecordScheduleTick records a tick and its run together, once" * doctest::timeout(60)) {
  KEEL_PG_DB_OR_SKIP(db, "ticks");
  RunRecord run = PgRun("s1", 100, RunStatus::kQueued);
  auto created = pg::RecordScheduleTick(db, "nightly", 1000, run);
  REQUIRE_MESSAGE(created.ok(), created.status().message());
  CHECK(*created == Store::TickOutcome::kCreated);
  CHECK(PgValue(db, "SELECT status || ' ' || epoch FROM runs WHERE id = 's1'") == "queued 1");
  auto again = pg::RecordScheduleTick(db, "nightly", 1000, PgRun("s2", 100, RunStatus::kQueued));
  REQUIRE(again.ok());
  CHECK(*again == Store::TickOutcome::kAlreadyRecorded);
  CHECK(PgValue(db, "SELECT count(*) FROM runs WHERE id = 's2'") == "0");
  auto taken = pg::RecordScheduleTick(db, "nightly", 2000, run);
  REQUIRE(taken.ok());
  CHECK(*taken == Store::TickOutcome::kRunIdTaken);
  CHECK(PgValue(db, "SELECT count(*) FROM schedule_ticks") == "1");
  REQUIRE(pg::RecordScheduleTick(db, "nightly", 3000, PgRun("s3", 1, RunStatus::kQueued)).ok());
  REQUIRE(pg::RecordScheduleTick(db, "Hourly", 50, PgRun("h1", 1, RunStatus::kQueued)).ok());
  auto last = pg::LastScheduleTicks(db);
  REQUIRE(last.ok());
  REQUIRE(last->size() == 2);
  CHECK(last->at(0).key == "Hourly");
  CHECK(last->at(1).key == "nightly");
  CHECK(last->at(1).tick == 3000);
  CHECK(last->at(1).run_id == "s3");
}

TEST_CASE("A tick raced by many threads is recorded once; so is a run id" * doctest::timeout(300)) {
  KEEL_PG_DB_OR_SKIP(db, "ticks_race");
  constexpr int kThreads = 8;
  for (int round = 0; round < 5; ++round) {
    std::atomic<int> created{0}, recorded{0}, failed{0};
    OnThreads(db_url, kThreads, [&](pg::Connection& conn, int i) {
      RunRecord run =
          PgRun("t" + std::to_string(round) + "-" + std::to_string(i), 1, RunStatus::kQueued);
      auto outcome = pg::RecordScheduleTick(conn, "k", round, run);
      if (!outcome.ok()) {
        ++failed;
      } else if (*outcome == Store::TickOutcome::kCreated) {
        ++created;
      } else if (*outcome == Store::TickOutcome::kAlreadyRecorded) {
        ++recorded;
      }
    });
    CHECK(failed.load() == 0);
    CHECK(created.load() == 1);
    CHECK(recorded.load() == kThreads - 1);
  }
  CHECK(PgValue(db, "SELECT count(*) FROM runs") == "5");

  // Many ticks racing for one run id: one is recorded, the rest told to pick another id.
  std::atomic<int> created{0}, id_taken{0}, failed{0};
  OnThreads(db_url, kThreads, [&](pg::Connection& conn, int i) {
    auto outcome =
        pg::RecordScheduleTick(conn, "other", 100 + i, PgRun("same", 1, RunStatus::kQueued));
    if (!outcome.ok()) {
      ++failed;
    } else if (*outcome == Store::TickOutcome::kCreated) {
      ++created;
    } else if (*outcome == Store::TickOutcome::kRunIdTaken) {
      ++id_taken;
    }
  });
  CHECK(failed.load() == 0);
  CHECK(created.load() == 1);
  CHECK(id_taken.load() == kThreads - 1);
  CHECK(PgValue(db, "SELECT count(*) FROM schedule_ticks WHERE key = 'other'") == "1");
}

}  // namespace
}  // namespace keel
