// The SQLite store's alerts outbox (schema version 11): the writer's
// transactions behind Store::ScanAlerts, ClaimAlerts and CompleteAlert.
// Every statement that touches alert_cursors or alert_outbox is here.

#include <sqlite3.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "store/sqlite/sqlite_store.h"
#include "store/sqlite/sqlite_writer.h"

namespace keel {
namespace sqlite {
namespace {

constexpr char kReadCursor[] = "SELECT position FROM alert_cursors WHERE name = ?1";
constexpr char kWriteCursor[] =
    "INSERT INTO alert_cursors (name, position) VALUES (?1, ?2) "
    "ON CONFLICT (name) DO UPDATE SET position = excluded.position";
// Runs finished since ?1, through runs_by_finished: `+status` keeps SQLite
// from reading every failed run of the history through runs_by_status.
constexpr char kFinishedRuns[] =
    "SELECT id, workflow, status, error, finished_at, epoch FROM runs "
    "WHERE finished_at > ?1 AND +status IN ('failed', 'degraded') ORDER BY finished_at";
constexpr char kOpenedBreakers[] =
    "SELECT key, state, opened_at FROM breakers WHERE opened_at > ?1 ORDER BY opened_at";
constexpr char kInsertAlert[] =
    "INSERT INTO alert_outbox (dedupe_key, kind, run_id, workflow, status, error, breaker_key, "
    "at, created_at, next_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9) "
    "ON CONFLICT (dedupe_key) DO NOTHING";
// Delivered rows are kept a week for the operator, then dropped: far
// behind any scan's overlap, so their keys are never needed again.
constexpr double kKeepDelivered = 7 * 86400;
constexpr char kDropDelivered[] =
    "DELETE FROM alert_outbox WHERE delivered_at > 0 AND delivered_at < ?1";
constexpr char kDueAlerts[] =
    "SELECT id, dedupe_key, kind, run_id, workflow, status, error, breaker_key, at, attempts "
    "FROM alert_outbox WHERE delivered_at = 0 AND next_at <= ?1 AND lease_until <= ?1 "
    "ORDER BY next_at, id LIMIT ?2";
constexpr char kLeaseAlert[] =
    "UPDATE alert_outbox SET lease_owner = ?2, lease_until = ?3 WHERE id = ?1";
constexpr char kDelivered[] =
    "UPDATE alert_outbox SET delivered_at = ?3, attempts = attempts + 1, lease_until = 0, "
    "last_error = '' WHERE id = ?1 AND lease_owner = ?2 AND delivered_at = 0";
constexpr char kFailed[] =
    "UPDATE alert_outbox SET attempts = attempts + 1, next_at = ?3, lease_until = 0, "
    "lease_owner = '', last_error = ?4 WHERE id = ?1 AND lease_owner = ?2 AND delivered_at = 0";

Result<double> ReadCursor(Connection* conn, const char* name, bool* found) {
  Statement stmt;
  Status s = stmt.Prepare(conn, kReadCursor);
  if (!s.ok()) return s;
  stmt.Bind(1, std::string_view(name));
  *found = stmt.Step(&s, std::string("reading alert cursor ") + name);
  double position = *found ? stmt.Real(0) : 0;
  stmt.Reset();
  if (!s.ok()) return s;
  return position;
}

Status WriteCursor(Connection* conn, const char* name, double position) {
  Statement stmt;
  Status s = stmt.Prepare(conn, kWriteCursor);
  if (!s.ok()) return s;
  stmt.Bind(1, std::string_view(name)).Bind(2, position);
  return stmt.Run(std::string("writing alert cursor ") + name);
}

}  // namespace

Result<int64_t> SqliteWriter::ScanAlerts(double now, double overlap_s) {
  int64_t added = 0;
  Status status = InTransaction([&]() -> Status {
    added = 0;
    Connection* conn = conn_.get();
    bool found = false;
    auto since = ReadCursor(conn, "since", &found);
    if (!since.ok()) return since.status();
    if (!found) {
      // The first scan of this database: alerting starts now.
      for (const char* name : {"since", "runs", "breakers"}) {
        Status s = WriteCursor(conn, name, now);
        if (!s.ok()) return s;
      }
      return Status::Ok();
    }
    Statement insert;
    Status s = insert.Prepare(conn, kInsertAlert);
    if (!s.ok()) return s;
    auto add = [&](const std::string& key, const std::string& kind, const std::string& run_id,
                   const std::string& workflow, const std::string& state,
                   const std::string& error, const std::string& breaker, double at) {
      insert.Bind(1, key)
          .Bind(2, kind)
          .Bind(3, run_id)
          .Bind(4, workflow)
          .Bind(5, state)
          .Bind(6, error)
          .Bind(7, breaker)
          .Bind(8, at)
          .Bind(9, now);
      Status r = insert.Run("adding alert " + key);
      if (r.ok()) added += sqlite3_changes(conn->get());
      return r;
    };

    bool has = false;
    auto runs_cursor = ReadCursor(conn, "runs", &has);
    if (!runs_cursor.ok()) return runs_cursor.status();
    double runs_seen = *runs_cursor;
    {
      Statement runs;
      s = runs.Prepare(conn, kFinishedRuns);
      if (!s.ok()) return s;
      runs.Bind(1, std::max(*since, *runs_cursor - overlap_s));
      struct Row {
        std::string id, workflow, status, error;
        double finished_at;
        int64_t epoch;
      };
      std::vector<Row> rows;
      while (runs.Step(&s, "reading finished runs")) {
        rows.push_back({runs.Text(0), runs.Text(1), runs.Text(2), runs.Text(3), runs.Real(4),
                        runs.Int(5)});
      }
      runs.Reset();
      if (!s.ok()) return s;
      for (const Row& r : rows) {
        s = add("run:" + r.id + ":" + r.status + ":e" + std::to_string(r.epoch), "run_" + r.status,
                r.id, r.workflow, r.status, r.error, "", r.finished_at);
        if (!s.ok()) return s;
        runs_seen = std::max(runs_seen, r.finished_at);
      }
    }
    auto breakers_cursor = ReadCursor(conn, "breakers", &has);
    if (!breakers_cursor.ok()) return breakers_cursor.status();
    double breakers_seen = *breakers_cursor;
    {
      Statement breakers;
      s = breakers.Prepare(conn, kOpenedBreakers);
      if (!s.ok()) return s;
      breakers.Bind(1, std::max(*since, *breakers_cursor - overlap_s));
      struct Row {
        std::string key, state;
        double opened_at;
      };
      std::vector<Row> rows;
      while (breakers.Step(&s, "reading opened breakers")) {
        rows.push_back({breakers.Text(0), breakers.Text(1), breakers.Real(2)});
      }
      breakers.Reset();
      if (!s.ok()) return s;
      for (const Row& r : rows) {
        char stamp[32];
        std::snprintf(stamp, sizeof stamp, "%.6f", r.opened_at);
        s = add("breaker:" + r.key + ":" + stamp, "breaker_open", "", "", r.state, "", r.key,
                r.opened_at);
        if (!s.ok()) return s;
        breakers_seen = std::max(breakers_seen, r.opened_at);
      }
    }
    {
      Statement drop;
      s = drop.Prepare(conn, kDropDelivered);
      if (!s.ok()) return s;
      drop.Bind(1, now - kKeepDelivered);
      s = drop.Run("dropping delivered alerts");
      if (!s.ok()) return s;
    }
    // Past `now - overlap_s` nothing new is expected late, so the cursors
    // move up to it even when nothing was found: each scan reads a bounded
    // stretch of the history, however long ago the last alert was.
    s = WriteCursor(conn, "runs", std::max(runs_seen, now - overlap_s));
    if (!s.ok()) return s;
    return WriteCursor(conn, "breakers", std::max(breakers_seen, now - overlap_s));
  });
  if (!status.ok()) return status;
  return added;
}

Result<std::vector<Store::AlertRow>> SqliteWriter::ClaimAlerts(const std::string& owner,
                                                               double now, double lease_s,
                                                               int limit) {
  std::vector<Store::AlertRow> rows;
  Status status = InTransaction([&]() -> Status {
    rows.clear();
    Statement due;
    Status s = due.Prepare(conn_.get(), kDueAlerts);
    if (!s.ok()) return s;
    due.Bind(1, now).Bind(2, limit);
    while (due.Step(&s, "reading due alerts")) {
      Store::AlertRow& row = rows.emplace_back();
      row.id = due.Int(0);
      row.dedupe_key = due.Text(1);
      row.kind = due.Text(2);
      row.run_id = due.Text(3);
      row.workflow = due.Text(4);
      row.status = due.Text(5);
      row.error = due.Text(6);
      row.breaker_key = due.Text(7);
      row.at = due.Real(8);
      row.attempts = static_cast<int>(due.Int(9));
    }
    due.Reset();
    if (!s.ok()) return s;
    Statement lease;
    s = lease.Prepare(conn_.get(), kLeaseAlert);
    if (!s.ok()) return s;
    for (const Store::AlertRow& row : rows) {
      lease.Bind(1, row.id).Bind(2, owner).Bind(3, now + lease_s);
      s = lease.Run("leasing alert " + row.dedupe_key);
      if (!s.ok()) return s;
    }
    return Status::Ok();
  });
  if (!status.ok()) return status;
  return rows;
}

Result<bool> SqliteWriter::CompleteAlert(int64_t id, const std::string& owner, bool delivered,
                                         double now, double retry_at, const std::string& error) {
  bool held = false;
  Status status = InTransaction([&]() -> Status {
    Statement stmt;
    Status s = stmt.Prepare(conn_.get(), delivered ? kDelivered : kFailed);
    if (!s.ok()) return s;
    stmt.Bind(1, id).Bind(2, owner);
    if (delivered) {
      stmt.Bind(3, now);
    } else {
      stmt.Bind(3, retry_at).Bind(4, error);
    }
    s = stmt.Run("recording the delivery of alert " + std::to_string(id));
    held = s.ok() && sqlite3_changes(conn_->get()) > 0;
    return s;
  });
  if (!status.ok()) return status;
  return held;
}

}  // namespace sqlite

Result<int64_t> SqliteStore::ScanAlerts(double now, double overlap_s) {
  int64_t added = 0;
  Status status = CallOnWriter([&](sqlite::SqliteWriter* writer) {
    auto result = writer->ScanAlerts(now, overlap_s);
    if (!result.ok()) return result.status();
    added = *result;
    return Status::Ok();
  });
  if (!status.ok()) return status;
  return added;
}

Result<std::vector<Store::AlertRow>> SqliteStore::ClaimAlerts(const std::string& owner, double now,
                                                              double lease_s, int limit) {
  std::vector<AlertRow> rows;
  Status status = CallOnWriter([&](sqlite::SqliteWriter* writer) {
    auto result = writer->ClaimAlerts(owner, now, lease_s, limit);
    if (!result.ok()) return result.status();
    rows = std::move(result).value();
    return Status::Ok();
  });
  if (!status.ok()) return status;
  return rows;
}

Result<bool> SqliteStore::CompleteAlert(int64_t id, const std::string& owner, bool delivered,
                                        double now, double retry_at, const std::string& error) {
  bool held = false;
  Status status = CallOnWriter([&](sqlite::SqliteWriter* writer) {
    auto result = writer->CompleteAlert(id, owner, delivered, now, retry_at, error);
    if (!result.ok()) return result.status();
    held = *result;
    return Status::Ok();
  });
  if (!status.ok()) return status;
  return held;
}

}  // namespace keel
