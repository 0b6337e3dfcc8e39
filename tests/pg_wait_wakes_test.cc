// Workers' wakes of parked waits (store/postgres/pg_wait_wakes.h) against a
// real server: what each way in (a due time, a signal not taken, a signal
// the node took before) wakes, what it leaves, how the woken node's claims
// go on numbering, and many workers waking at once.

#include "store/postgres/pg_wait_wakes.h"

#include <doctest/doctest.h>

#include <latch>
#include <map>
#include <thread>

#include "store/postgres/pg_waits.h"
#include "tests/pg_ops_util.h"

namespace keel {
namespace {

using testing::PgNode;
using testing::PgRun;
using testing::PgValue;
using testing::PutNode;
using testing::PutRun;

// A distributed run `id` parked on wait node "w" recorded as `waiting_for`.
void ParkDistributed(pg::Connection& conn, const std::string& id, const std::string& waiting_for,
                     RunStatus status = RunStatus::kWaiting) {
  PutRun(conn, PgRun(id, 1, status));
  NodeRecord wait = PgNode(id, "w", NodeStatus::kWaiting);
  wait.output_json = waiting_for;
  PutNode(conn, wait);
  auto set = conn.Exec("UPDATE runs SET distributed = true WHERE id = $1", {id}, "test");
  REQUIRE_MESSAGE(set.ok(), set.status().message());
}

std::map<std::string, std::string> WokenBy(const std::vector<pg::WokenWait>& woken) {
  std::map<std::string, std::string> out;
  for (const pg::WokenWait& w : woken) out[w.run_id + "/" + w.node] = w.by;
  return out;
}

TEST_CASE("each way in wakes its wait once; nothing else is touched" * doctest::timeout(60)) {
  KEEL_PG_DB_OR_SKIP(db, "wakes_ways");
  ParkDistributed(db, "timer", R"({"signal":"never","due":10})");
  ParkDistributed(db, "later", R"({"signal":"never","due":100})");
  ParkDistributed(db, "signal", R"({"signal":"go","due":0})");
  REQUIRE(pg::SendSignal(db, "signal", "go", "{}", 1).ok());
  ParkDistributed(db, "self", R"({"signal":"mine","due":0})");
  REQUIRE(pg::SendSignal(db, "self", "mine", "{}", 1).ok());
  REQUIRE(pg::TakeSignal(db, "self", "mine", "w", 1, 1).ok());
  ParkDistributed(db, "other", R"({"signal":"gone","due":0})");
  REQUIRE(pg::SendSignal(db, "other", "gone", "{}", 1).ok());
  REQUIRE(pg::TakeSignal(db, "other", "gone", "x", 1, 1).ok());
  ParkDistributed(db, "wrong-name", R"({"signal":"go","due":0})");
  REQUIRE(pg::SendSignal(db, "wrong-name", "stop", "{}", 1).ok());
  ParkDistributed(db, "damaged", "{not json");
  ParkDistributed(db, "cancelled", R"({"signal":"never","due":10})", RunStatus::kCancelled);
  // A run of one process is woken by `keel serve`, not by workers.
  PutRun(db, PgRun("local", 1, RunStatus::kWaiting));
  NodeRecord local = PgNode("local", "w", NodeStatus::kWaiting);
  local.output_json = R"({"signal":"never","due":10})";
  PutNode(db, local);

  auto woken = pg::WakeWaits(db, 20);
  REQUIRE_MESSAGE(woken.ok(), woken.status().message());
  CHECK(WokenBy(*woken) == std::map<std::string, std::string>{
                               {"timer/w", "timer"}, {"signal/w", "signal"}, {"self/w", "signal"}});
  for (const char* id : {"timer", "signal", "self"}) {
    CAPTURE(id);
    CHECK(PgValue(db, "SELECT status FROM runs WHERE id = $1", {id}) == "running");
    CHECK(PgValue(db, "SELECT count(*) FROM nodes WHERE run_id = $1", {id}) == "0");
    CHECK(PgValue(db, "SELECT state || ' ' || attempt FROM node_queue WHERE run_id = $1", {id}) ==
          "ready 0");
    CHECK(PgValue(db, "SELECT count(*) FROM events WHERE run_id = $1 AND kind = 'wait_woken'",
                  {id}) == "1");
  }
  for (const char* id : {"later", "other", "wrong-name", "damaged", "cancelled", "local"}) {
    CAPTURE(id);
    CHECK(PgValue(db, "SELECT status FROM nodes WHERE run_id = $1", {id}) == "waiting");
    CHECK(PgValue(db, "SELECT count(*) FROM node_queue WHERE run_id = $1", {id}) == "0");
  }
  auto again = pg::WakeWaits(db, 20);
  REQUIRE(again.ok());
  CHECK(again->empty());
}

TEST_CASE("a woken wait's next claim goes on from its last attempt" * doctest::timeout(60)) {
  KEEL_PG_DB_OR_SKIP(db, "wakes_attempts");
  ParkDistributed(db, "r", R"({"signal":"never","due":10})");
  REQUIRE(db.Exec("INSERT INTO claim_log (run_id, node, attempt, worker_id, action) VALUES "
                  "('r', 'w', 1, 'a', 'claim'), ('r', 'w', 1, 'a', 'requeue'), "
                  "('r', 'w', 2, 'b', 'claim'), ('r', 'w', 2, 'b', 'park')",
                  {}, "test")
              .ok());
  auto woken = pg::WakeWaits(db, 20);
  REQUIRE(woken.ok());
  REQUIRE(woken->size() == 1);
  CHECK(PgValue(db, "SELECT state || ' ' || attempt FROM node_queue") == "ready 2");
}

TEST_CASE("workers waking at once wake each wait once" * doctest::timeout(120)) {
  KEEL_PG_DB_OR_SKIP(db, "wakes_race");
  constexpr int kRuns = 40;
  for (int i = 0; i < kRuns; ++i) {
    const std::string id = "r" + std::to_string(i);
    ParkDistributed(db, id, R"({"signal":"go","due":0})");
    REQUIRE(pg::SendSignal(db, id, "go", "{}", 1).ok());
  }
  constexpr int kWorkers = 4;
  std::latch start(kWorkers);
  std::vector<size_t> counts(kWorkers, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kWorkers; ++t) {
    threads.emplace_back([&, t] {
      auto conn = pg::Connection::Open(db_url);
      start.arrive_and_wait();
      if (!conn.ok()) return;
      for (int round = 0; round < 5; ++round) {
        auto woken = pg::WakeWaits(**conn, 20, 8);
        if (woken.ok()) counts[t] += woken->size();
      }
    });
  }
  for (auto& t : threads) t.join();
  size_t total = 0;
  for (size_t c : counts) total += c;
  CHECK(total == kRuns);
  CHECK(PgValue(db, "SELECT count(*) FROM events WHERE kind = 'wait_woken'") ==
        std::to_string(kRuns));
  CHECK(PgValue(db, "SELECT count(*) FROM node_queue WHERE state = 'ready'") ==
        std::to_string(kRuns));
  CHECK(PgValue(db, "SELECT count(*) FROM nodes WHERE status = 'waiting'") == "0");
}

}  // namespace
}  // namespace keel
