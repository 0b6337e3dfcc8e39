// The PostgreSQL store's breakers, signals and cancellation (pg_breakers.h,
// pg_waits.h) against a real server: what each returns and writes, as the
// SQLite store does, and the races between connections — concurrent breaker
// updates lose nothing and let no more than `probes` calls through, one
// signal is taken once however many take it at once.

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <latch>
#include <thread>

#include "store/postgres/pg_breakers.h"
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

TEST_CASE("UpdateBreaker starts from a closed breaker and keeps every field exactly" *
          doctest::timeout(60)) {
  KEEL_PG_DB_OR_SKIP(db, "breaker_fields");
  int runs = 0;
  auto first = pg::UpdateBreaker(
      db, "openai",
      [&](BreakerSnapshot& s) {
        ++runs;
        CHECK(s.state == BreakerState::kClosed);
        CHECK(s.calls == 0);
        CHECK(s.probes.empty());
        CHECK(s.config.key.empty());
        s.state = BreakerState::kHalfOpen;
        s.consecutive_failures = 3;
        s.probe_successes = 1;
        s.opened_at = 1700000000.123456789;
        s.cooldown = 0.1;
        s.calls = 7;
        s.failed = 4;
        s.recent = {{1.1, 1}, {2.2, 0}};
        s.probes = {ProbeLease{42, Owner{9, "host \"x\"", 77}, 0.3, 1.0 / 3}};
        s.config.key = "openai";
        s.config.failure_rate = 0.25;
        s.config.probes = 2;
      },
      12.5);
  REQUIRE_MESSAGE(first.ok(), first.status().message());
  CHECK(runs == 1);

  auto listed = pg::ListBreakers(db);
  REQUIRE(listed.ok());
  REQUIRE(listed->size() == 1);
  const BreakerRow& row = listed->front();
  CHECK(row.key == "openai");
  CHECK(row.updated_at == 12.5);
  const BreakerSnapshot& s = row.snapshot;
  CHECK(s.state == BreakerState::kHalfOpen);
  CHECK(s.consecutive_failures == 3);
  CHECK(s.probe_successes == 1);
  CHECK(s.opened_at == 1700000000.123456789);
  CHECK(s.cooldown == 0.1);
  CHECK(s.calls == 7);
  CHECK(s.failed == 4);
  CHECK(s.recent == std::deque<WindowCall>{{1.1, 1}, {2.2, 0}});
  REQUIRE(s.probes.size() == 1);
  CHECK(s.probes[0].id == 42);
  CHECK(s.probes[0].owner.host == "host \"x\"");
  CHECK(s.probes[0].owner.start_ticks == 77);
  CHECK(s.probes[0].renewed_at == 1.0 / 3);
  CHECK(s.config.key == "openai");
  CHECK(s.config.failure_rate == 0.25);
  CHECK(s.config.probes == 2);
  CHECK(PgValue(db, "SELECT probes_out FROM breakers WHERE key = 'openai'") == "1");

  // The next update sees what the first wrote.
  auto second = pg::UpdateBreaker(
      db, "openai", [](BreakerSnapshot& b) { b.calls += 1; }, 13);
  REQUIRE(second.ok());
  CHECK(second->calls == 8);
  CHECK(second->recent.size() == 2);
}

TEST_CASE("ListBreakers sorts by key bytes; ResetBreakers deletes one or all" *
          doctest::timeout(60)) {
  KEEL_PG_DB_OR_SKIP(db, "breaker_reset");
  for (const char* key : {"b", "B", "a", "a-1"}) {
    REQUIRE(pg::UpdateBreaker(
                db, key, [](BreakerSnapshot&) {}, 1)
                .ok());
  }
  auto listed = pg::ListBreakers(db);
  REQUIRE(listed.ok());
  std::vector<std::string> keys;
  for (const BreakerRow& row : *listed) keys.push_back(row.key);
  CHECK(keys == std::vector<std::string>{"B", "a", "a-1", "b"});

  auto one = pg::ResetBreakers(db, "a");
  REQUIRE(one.ok());
  CHECK(*one == 1);
  auto none = pg::ResetBreakers(db, "missing");
  REQUIRE(none.ok());
  CHECK(*none == 0);
  auto all = pg::ResetBreakers(db, "");
  REQUIRE(all.ok());
  CHECK(*all == 3);
  CHECK(pg::ListBreakers(db)->empty());
}

TEST_CASE("UpdateBreaker under contention loses no update and admits at most `probes` at once" *
          doctest::timeout(300)) {
  KEEL_PG_DB_OR_SKIP(db, "breaker_race");
  BreakerConfig config;
  config.key = "shared";
  config.cooldown = 1;
  config.probes = 2;
  config.successes = 1000000;  // never closes: every call stays a probe
  // Open long ago: the first caller turns it half-open.
  REQUIRE(pg::UpdateBreaker(
              db, "shared",
              [](BreakerSnapshot& s) {
                s.state = BreakerState::kOpen;
                s.opened_at = 1;
                s.cooldown = 1;
              },
              1)
              .ok());

  // Two processes (owners) of eight threads each, every thread on its own
  // connection.
  constexpr int kOwners = 2, kThreadsPerOwner = 8, kRounds = 25;
  std::atomic<int> in_flight{0}, most{0}, probes{0}, rejected{0}, updates{0}, errors{0};
  std::atomic<int64_t> next_id{1};
  std::latch start(kOwners * kThreadsPerOwner);
  std::vector<std::thread> threads;
  for (int o = 0; o < kOwners; ++o) {
    for (int t = 0; t < kThreadsPerOwner; ++t) {
      threads.emplace_back([&, o] {
        auto conn = pg::Connection::Open(db_url);
        if (!conn.ok()) {
          ++errors;
          start.count_down();
          return;
        }
        ProbeClaim claim;
        claim.owner = Owner{100 + o, "host", 1};
        claim.lease = 1e9;
        start.arrive_and_wait();
        for (int r = 0; r < kRounds; ++r) {
          claim.id = next_id++;
          Admission admission = Admission::kRejected;
          auto admitted = pg::UpdateBreaker(
              **conn, "shared",
              [&](BreakerSnapshot& s) {
                double retry_in = 0;
                BreakerTransition transition = BreakerTransition::kNone;
                admission = Admit(s, config, 1000, claim, &retry_in, &transition);
                s.failed += 1;  // counts updates: none may be lost
              },
              1000);
          if (!admitted.ok()) {
            ++errors;
            continue;
          }
          ++updates;
          if (admission != Admission::kProbe) {
            ++rejected;
            continue;
          }
          ++probes;
          int now_in = ++in_flight;
          int seen = most.load();
          while (now_in > seen && !most.compare_exchange_weak(seen, now_in)) {
          }
          // The probe's call: a round trip to the server.
          (void)(*conn)->Exec("SELECT 1", {}, "probing");
          --in_flight;  // before its slot is given back
          auto released = pg::UpdateBreaker(
              **conn, "shared",
              [&](BreakerSnapshot& s) {
                ReleaseProbe(s, claim.id);
                s.failed += 1;
              },
              1000);
          if (released.ok()) {
            ++updates;
          } else {
            ++errors;
          }
        }
      });
    }
  }
  for (auto& t : threads) t.join();
  CHECK(errors.load() == 0);
  CHECK(most.load() <= config.probes);
  CHECK(probes.load() > 0);
  CHECK(rejected.load() > 0);
  auto listed = pg::ListBreakers(db);
  REQUIRE(listed.ok());
  REQUIRE(listed->size() == 1);
  CHECK(listed->front().snapshot.failed == updates.load());
  CHECK(listed->front().snapshot.probes.empty());
  CHECK(listed->front().snapshot.state == BreakerState::kHalfOpen);
  MESSAGE("probes " << probes.load() << ", rejected " << rejected.load() << ", most at once "
                    << most.load());
}

TEST_CASE("SendSignal refuses missing and finished runs" * doctest::timeout(60)) {
  KEEL_PG_DB_OR_SKIP(db, "signal_send");
  Status missing = pg::SendSignal(db, "nope", "go", "{}", 1);
  CHECK(missing.kind() == ErrorKind::kPermanent);
  CHECK(missing.message().find("no run 'nope'") != std::string::npos);
  PutRun(db, PgRun("done", 1, RunStatus::kSucceeded));
  Status finished = pg::SendSignal(db, "done", "go", "{}", 1);
  CHECK(finished.kind() == ErrorKind::kPermanent);
  CHECK(finished.message() == "run done already succeeded; a finished run takes no signals");
  CHECK(PgValue(db, "SELECT count(*) FROM signals") == "0");
}

TEST_CASE("TakeSignal takes the oldest untaken signal once, and again for the node that took it" *
          doctest::timeout(60)) {
  KEEL_PG_DB_OR_SKIP(db, "signal_take");
  PutRun(db, PgRun("r"));
  auto none = pg::TakeSignal(db, "r", "go", "a", 2, 1);
  REQUIRE(none.ok());
  CHECK(!none->has_value());
  REQUIRE(pg::SendSignal(db, "r", "go", R"({"n":1})", 2).ok());
  REQUIRE(pg::SendSignal(db, "r", "other", R"({"n":0})", 2).ok());
  REQUIRE(pg::SendSignal(db, "r", "go", R"({"n":2})", 3).ok());
  auto a = pg::TakeSignal(db, "r", "go", "a", 4, 1);
  REQUIRE(a.ok());
  CHECK(a->value_or("") == R"({"n":1})");
  auto a_again = pg::TakeSignal(db, "r", "go", "a", 5, 1);
  REQUIRE(a_again.ok());
  CHECK(a_again->value_or("") == R"({"n":1})");
  auto b = pg::TakeSignal(db, "r", "go", "b", 6, 1);
  REQUIRE(b.ok());
  CHECK(b->value_or("") == R"({"n":2})");
  auto c = pg::TakeSignal(db, "r", "go", "c", 7, 1);
  REQUIRE(c.ok());
  CHECK(!c->has_value());
  CHECK(PgValue(db, "SELECT taken_at FROM signals WHERE taken_by = 'a'") == "4");
  CHECK(PgValue(db, "SELECT count(*) FROM signals WHERE taken_by IS NULL") == "1");
}

TEST_CASE("TakeSignal is fenced by the epoch the store holds" * doctest::timeout(60)) {
  KEEL_PG_DB_OR_SKIP(db, "signal_fence");
  PutRun(db, PgRun("r"));
  REQUIRE(pg::SendSignal(db, "r", "go", "{}", 2).ok());
  auto stale = pg::TakeSignal(db, "r", "go", "a", 3, 7);
  CHECK(stale.status().kind() == ErrorKind::kPermanent);
  CHECK(stale.status().message() ==
        "run r was taken over by another process (epoch 1, this process holds 7); this process "
        "stops writing it");
  CHECK(PgValue(db, "SELECT count(*) FROM signals WHERE taken_by IS NULL") == "1");
  auto gone = pg::TakeSignal(db, "missing", "go", "a", 3, 1);
  CHECK(gone.status().kind() == ErrorKind::kPermanent);
  CHECK(gone.status().message().find("was deleted") != std::string::npos);
  // Not held (0): no epoch to check.
  auto unheld = pg::TakeSignal(db, "r", "go", "a", 3, 0);
  REQUIRE(unheld.ok());
  CHECK(unheld->has_value());
}

TEST_CASE("Two connections taking one signal at once: it is taken once" * doctest::timeout(300)) {
  KEEL_PG_DB_OR_SKIP(db, "signal_race");
  PutRun(db, PgRun("r"));
  auto other = PgConnect(db_url);
  constexpr int kRounds = 40;
  int doubled = 0, missed = 0;
  for (int round = 0; round < kRounds; ++round) {
    const std::string name = "go" + std::to_string(round);
    REQUIRE(pg::SendSignal(db, "r", name, "{}", 1).ok());
    std::latch start(2);
    std::atomic<int> got{0}, failed{0};
    auto take = [&](pg::Connection& conn, const char* node) {
      start.arrive_and_wait();
      auto taken = pg::TakeSignal(conn, "r", name, node, 2, 1);
      if (!taken.ok()) {
        ++failed;
      } else if (taken->has_value()) {
        ++got;
      }
    };
    std::thread first([&] { take(db, "a"); });
    std::thread second([&] { take(*other, "b"); });
    first.join();
    second.join();
    REQUIRE(failed.load() == 0);
    if (got.load() > 1) ++doubled;
    if (got.load() == 0) ++missed;
  }
  CHECK(doubled == 0);
  CHECK(missed == 0);
  CHECK(PgValue(db, "SELECT count(*) FROM signals WHERE taken_by IS NULL") == "0");
}

TEST_CASE("CancelRun asks a live owner and records a run without one cancelled" *
          doctest::timeout(60)) {
  KEEL_PG_DB_OR_SKIP(db, "cancel");
  auto missing = pg::CancelRun(db, "nope", 5, kDead);
  CHECK(missing.status().message().find("no run 'nope'") != std::string::npos);
  auto missing_asked = pg::CancelRequested(db, "nope");
  REQUIRE(missing_asked.ok());
  CHECK(!*missing_asked);

  PutRun(db, PgRun("live"));
  auto asked = pg::CancelRun(db, "live", 5, kAlive);
  REQUIRE(asked.ok());
  CHECK(*asked == CancelOutcome::kRequested);
  CHECK(*pg::CancelRequested(db, "live"));
  CHECK(PgValue(db, "SELECT status || ' ' || epoch FROM runs WHERE id = 'live'") == "running 1");

  PutRun(db, PgRun("dead"));
  PutNode(db, PgNode("dead", "ok"));
  PutNode(db, PgNode("dead", "busy", NodeStatus::kRunning));
  PutNode(db, PgNode("dead", "w", NodeStatus::kWaiting));
  PutEvents(db, {PgEvent("dead", "run_started"), PgEvent("dead", "node_started", "busy")});
  CHECK(!*pg::CancelRequested(db, "dead"));
  auto cancelled = pg::CancelRun(db, "dead", 6.25, kDead);
  REQUIRE_MESSAGE(cancelled.ok(), cancelled.status().message());
  CHECK(*cancelled == CancelOutcome::kCancelled);
  CHECK(*pg::CancelRequested(db, "dead"));
  CHECK(PgValue(db,
                "SELECT status || ' ' || epoch || ' ' || finished_at || ' ' || error "
                "FROM runs WHERE id = 'dead'") == "cancelled 2 6.25 cancelled by keel cancel");
  CHECK(PgValue(db,
                "SELECT string_agg(node || ':' || status, ',' ORDER BY node) FROM nodes "
                "WHERE run_id = 'dead'") == "busy:cancelled,ok:succeeded,w:cancelled");
  CHECK(PgValue(db,
                "SELECT seq || ' ' || kind || ' ' || data_json FROM events WHERE run_id = "
                "'dead' ORDER BY seq DESC LIMIT 1") == R"(3 run_cancelled {"was":"running"})");
  auto again = pg::CancelRun(db, "dead", 7, kDead);
  CHECK(again.status().message() == "run dead was already cancelled");
  auto take = pg::TakeSignal(db, "dead", "go", "w", 7, 2);
  CHECK(take.status().kind() == ErrorKind::kPermanent);
  CHECK(take.status().message() == "run dead was cancelled; it takes no more signals");

  // Only a running run's owner is asked: a waiting one is cancelled at once.
  PutRun(db, PgRun("parked", 1, RunStatus::kWaiting));
  auto parked = pg::CancelRun(db, "parked", 8, kAlive);
  REQUIRE(parked.ok());
  CHECK(*parked == CancelOutcome::kCancelled);

  PutRun(db, PgRun("done", 1, RunStatus::kFailed));
  auto done = pg::CancelRun(db, "done", 8, kDead);
  CHECK(done.status().message() == "run done already failed; nothing to cancel");
}

TEST_CASE("TakeSignal and UpdateBreaker go on after the server drops their connection" *
          doctest::timeout(60)) {
  KEEL_PG_DB_OR_SKIP(db, "reconnect");
  PutRun(db, PgRun("r"));
  REQUIRE(pg::SendSignal(db, "r", "go", "{}", 1).ok());
  auto conn = PgConnect(db_url);
  auto drop = [&] {
    REQUIRE(
        db.Exec("SELECT pg_terminate_backend($1)", {std::to_string(conn->BackendPid())}, "dropping")
            .ok());
  };
  drop();
  auto taken = pg::TakeSignal(*conn, "r", "go", "n", 2, 1);
  REQUIRE_MESSAGE(taken.ok(), taken.status().message());
  CHECK(taken->has_value());
  drop();
  auto updated = pg::UpdateBreaker(
      *conn, "k", [](BreakerSnapshot& s) { s.calls += 1; }, 3);
  REQUIRE_MESSAGE(updated.ok(), updated.status().message());
  CHECK(updated->calls == 1);
}

}  // namespace
}  // namespace keel
