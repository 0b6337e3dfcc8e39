// pg::Connection::Transaction against a real server: a transaction that
// fails at its boundary with a serialization failure (40001) or a deadlock
// (40P01) runs again from the start and commits once; one that fails for
// any other reason is rolled back and returned, not repeated.

#include <doctest/doctest.h>

#include <atomic>
#include <latch>
#include <thread>

#include "store/postgres/pg_connection.h"
#include "tests/pg_ops_util.h"

namespace keel {
namespace {

std::string Value(pg::Connection& conn, const std::string& key) {
  auto rows = conn.Exec("SELECT v FROM counters WHERE k = $1", {key}, "test read");
  REQUIRE_MESSAGE(rows.ok(), rows.status().message());
  return rows->str(0, 0);
}

void MakeCounters(pg::Connection& conn) {
  REQUIRE(conn.ExecScript("CREATE TABLE counters (k text PRIMARY KEY, v bigint NOT NULL);"
                          "INSERT INTO counters VALUES ('a', 0), ('b', 0)",
                          "test setup")
              .ok());
}

TEST_CASE("a serialization failure runs the transaction again, which then commits once" *
          doctest::timeout(60)) {
  KEEL_PG_DB_OR_SKIP(db, "tx_serialization");
  MakeCounters(db);
  auto other = pg::Connection::Open(db_url);
  REQUIRE(other.ok());
  int runs = 0;
  Status done = db.Transaction(
      [&](pg::Connection& c) -> Status {
        ++runs;
        auto read = c.Exec("SELECT v FROM counters WHERE k = 'a'", {}, "reading a");
        if (!read.ok()) return read.status();
        if (runs == 1) {
          // Another session changes the row after this snapshot was taken.
          auto bumped =
              (*other)->Exec("UPDATE counters SET v = v + 10 WHERE k = 'a'", {}, "bumping a");
          REQUIRE(bumped.ok());
        }
        auto wrote = c.Exec("UPDATE counters SET v = $1 WHERE k = 'a'",
                            {std::to_string(read->int64(0, 0) + 1)}, "writing a");
        return wrote.ok() ? Status::Ok() : wrote.status();
      },
      "incrementing a", "REPEATABLE READ");
  REQUIRE_MESSAGE(done.ok(), done.message());
  CHECK(runs == 2);
  // The second run read the other session's 10: nothing was lost.
  CHECK(Value(db, "a") == "11");
}

TEST_CASE("of two transactions that deadlock, the one the server picks runs again" *
          doctest::timeout(60)) {
  KEEL_PG_DB_OR_SKIP(db, "tx_deadlock");
  MakeCounters(db);
  std::atomic<int> runs{0};
  std::latch both_locked(2);
  std::atomic<bool> first_round{true};
  auto cross = [&](const std::string& first, const std::string& second) {
    auto conn = pg::Connection::Open(db_url);
    REQUIRE(conn.ok());
    return (*conn)->Transaction(
        [&](pg::Connection& c) -> Status {
          ++runs;
          auto a = c.Exec("UPDATE counters SET v = v + 1 WHERE k = $1", {first}, "first lock");
          if (!a.ok()) return a.status();
          // Each holds its first row before asking for the other's.
          if (first_round.load()) both_locked.arrive_and_wait();
          first_round.store(false);
          auto b = c.Exec("UPDATE counters SET v = v + 1 WHERE k = $1", {second}, "second lock");
          return b.ok() ? Status::Ok() : b.status();
        },
        "crossing locks");
  };
  Status one, two;
  std::thread t([&] { one = cross("a", "b"); });
  two = cross("b", "a");
  t.join();
  CHECK_MESSAGE(one.ok(), one.message());
  CHECK_MESSAGE(two.ok(), two.message());
  CHECK(runs.load() == 3);  // the deadlock's victim ran twice
  CHECK(Value(db, "a") == "2");
  CHECK(Value(db, "b") == "2");
}

TEST_CASE("a transaction that fails otherwise is rolled back and not run again" *
          doctest::timeout(60)) {
  KEEL_PG_DB_OR_SKIP(db, "tx_error");
  MakeCounters(db);
  int runs = 0;
  Status done = db.Transaction(
      [&](pg::Connection& c) -> Status {
        ++runs;
        auto wrote = c.Exec("UPDATE counters SET v = 5 WHERE k = 'a'", {}, "writing a");
        if (!wrote.ok()) return wrote.status();
        auto bad = c.Exec("INSERT INTO counters VALUES ('a', 1)", {}, "inserting a again");
        return bad.ok() ? Status::Ok() : bad.status();
      },
      "a duplicate key");
  CHECK(!done.ok());
  CHECK(done.message().find("duplicate key") != std::string::npos);
  CHECK(runs == 1);
  CHECK(Value(db, "a") == "0");
}

}  // namespace
}  // namespace keel
