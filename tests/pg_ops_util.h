#pragma once
// What the tests of the PostgreSQL store's service-side functions share: a
// fresh migrated database per test case, more connections to it, and rows
// written the way the store writes them (pg_rows.h).
//
// Header-only; each helper is used from one thread at a time per connection.

#include <doctest/doctest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/store.h"
#include "store/postgres/pg_connection.h"
#include "store/postgres/pg_rows.h"
#include "store/postgres/pg_schema.h"
#include "tests/support/pg_database.h"
#include "tests/support/store_records.h"

namespace keel::testing {

struct PgDb {
  std::string url;
  std::unique_ptr<pg::Connection> conn;
};

inline std::unique_ptr<pg::Connection> PgConnect(const std::string& url) {
  auto conn = pg::Connection::Open(url);
  REQUIRE_MESSAGE(conn.ok(), conn.status().message());
  return std::move(*conn);
}

// A new database with keel's schema; nullopt when there is no server.
inline std::optional<PgDb> OpenPgDb(const std::string& tag) {
  auto url = test::FreshPgDatabase(tag);
  if (!url) return std::nullopt;
  PgDb db{*url, PgConnect(*url)};
  Status migrated = pg::Migrate(*db.conn);
  REQUIRE_MESSAGE(migrated.ok(), migrated.message());
  return db;
}

inline RunRecord PgRun(const std::string& id, double created_at = 1,
                       RunStatus status = RunStatus::kRunning) {
  RunRecord run = MakeRun(id, created_at);
  run.status = status;
  return run;
}

inline NodeRecord PgNode(const std::string& run_id, const std::string& name,
                         NodeStatus status = NodeStatus::kSucceeded) {
  return MakeNode(run_id, name, status);
}

inline void PutRun(pg::Connection& conn, const RunRecord& run) {
  Status s = pg::InsertRun(conn, run);
  REQUIRE_MESSAGE(s.ok(), s.message());
}

inline void PutNode(pg::Connection& conn, const NodeRecord& node) {
  Status s = pg::UpsertNode(conn, node);
  REQUIRE_MESSAGE(s.ok(), s.message());
}

// Appends `events` in one transaction; returns them with their seqs.
inline std::vector<EventRecord> PutEvents(pg::Connection& conn, std::vector<EventRecord> events) {
  Status s = conn.Transaction([&](pg::Connection& c) { return pg::InsertEvents(c, &events); },
                              "appending events");
  REQUIRE_MESSAGE(s.ok(), s.message());
  return events;
}

inline EventRecord PgEvent(const std::string& run_id, const std::string& kind,
                           const std::string& node = "", double ts = 3.0) {
  return EventRecord{run_id, 0, ts, node, kind, "{}"};
}

// One value of a query, as text, for checks on rows no function returns.
inline std::string PgValue(pg::Connection& conn, const std::string& sql,
                           const pg::Params& params = {}) {
  auto rows = conn.Exec(sql, params, "checking");
  REQUIRE_MESSAGE(rows.ok(), rows.status().message());
  REQUIRE(rows->size() == 1);
  return rows->str(0, 0);
}

}  // namespace keel::testing

// Opens a fresh database: `var` is a connection to it (pg::Connection&)
// and `var##_url` its URL. Ends the test case when there is no server
// (outside ctest's `pg` fixture).
#define KEEL_PG_DB_OR_SKIP(var, tag)              \
  auto var##_db = ::keel::testing::OpenPgDb(tag); \
  if (!var##_db) {                                \
    MESSAGE("no PostgreSQL server");              \
    return;                                       \
  }                                               \
  ::keel::pg::Connection& var = *var##_db->conn;  \
  const std::string var##_url = var##_db->url
