// pg::Connection::Pipelines against a real server: groups of statements
// sent in one round trip, each its own implicit transaction; a failing
// group rolls back alone and the next still runs; a connection lost before
// the round trip fails every group and the next use reconnects.

#include <doctest/doctest.h>

#include "store/postgres/pg_connection.h"
#include "tests/pg_ops_util.h"

namespace keel {
namespace {

std::string Keys(pg::Connection& conn) {
  auto rows = conn.Exec("SELECT coalesce(string_agg(k, ',' ORDER BY k), '') FROM t", {},
                        "reading t");
  REQUIRE_MESSAGE(rows.ok(), rows.status().message());
  return rows->str(0, 0);
}

TEST_CASE("each group commits or rolls back on its own, in one round trip" *
          doctest::timeout(60)) {
  KEEL_PG_DB_OR_SKIP(db, "pipelines");
  REQUIRE(db.ExecScript("CREATE TABLE t (k text PRIMARY KEY)", "test setup").ok());
  const std::string insert = "INSERT INTO t VALUES ($1)";
  auto results = db.Pipelines({{{insert, {"a"}}, {"SELECT 1 / $1::int", {"0"}}},
                               {{insert, {"b"}}, {"SELECT count(*) FROM t", {}}},
                               {{insert, {"b"}}},
                               {}},
                              "three groups");
  REQUIRE(results.size() == 4);
  REQUIRE_FALSE(results[0].ok());
  CHECK(pg::SqlStateOf(results[0].status()) == "22012");  // division by zero
  REQUIRE(results[1].ok());
  REQUIRE(results[1]->size() == 2);
  CHECK((*results[1])[1].str(0, 0) == "1");  // b, not the rolled-back a
  REQUIRE_FALSE(results[2].ok());
  CHECK(pg::SqlStateOf(results[2].status()) == "23505");  // b again
  REQUIRE(results[3].ok());
  CHECK(results[3]->empty());
  CHECK_FALSE(db.InTransaction());
  CHECK(Keys(db) == "b");
  // The statement prepared in that pipeline is used by name after it.
  auto again = db.Pipelines({{{insert, {"c"}}}}, "one group");
  REQUIRE(again[0].ok());
  CHECK(Keys(db) == "b,c");
}

TEST_CASE("a connection lost before the round trip fails every group; the next use "
          "reconnects" * doctest::timeout(60)) {
  KEEL_PG_DB_OR_SKIP(db, "pipelines_lost");
  REQUIRE(db.ExecScript("CREATE TABLE t (k text PRIMARY KEY)", "test setup").ok());
  auto killer = pg::Connection::Open(db_url);
  REQUIRE(killer.ok());
  auto killed = (*killer)->Exec("SELECT pg_terminate_backend($1)",
                                {std::to_string(db.BackendPid())}, "terminating");
  REQUIRE(killed.ok());
  auto results = db.Pipelines({{{"INSERT INTO t VALUES ($1)", {"a"}}}, {{"SELECT 1", {}}}},
                              "two groups");
  REQUIRE(results.size() == 2);
  CHECK_FALSE(results[0].ok());
  CHECK_FALSE(results[1].ok());
  CHECK(db.Healthy());
  CHECK(Keys(db) == "");
}

}  // namespace
}  // namespace keel
