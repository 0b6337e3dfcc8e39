#include "store/postgres/pg_alerts.h"

#include <algorithm>
#include <cstdio>

#include "store/postgres/pg_rows.h"

namespace keel::pg {
namespace {

constexpr char kReadCursors[] = "SELECT name, position FROM alert_cursors";
constexpr char kWriteCursor[] =
    "INSERT INTO alert_cursors (name, position) VALUES ($1, $2) "
    "ON CONFLICT (name) DO UPDATE SET position = excluded.position";
constexpr char kFinishedRuns[] =
    "SELECT id, workflow, status, error, finished_at, epoch FROM runs "
    "WHERE finished_at > $1 AND status IN ('failed', 'degraded') ORDER BY finished_at, id";
constexpr char kOpenedBreakers[] =
    "SELECT key, state, opened_at FROM breakers WHERE opened_at > $1 ORDER BY opened_at, key";
constexpr char kInsertAlert[] =
    "INSERT INTO alert_outbox (dedupe_key, kind, run_id, workflow, status, error, breaker_key, "
    "at, created_at, next_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) "
    "ON CONFLICT (dedupe_key) DO NOTHING";
// Delivered rows are kept a week for the operator, then dropped: far
// behind any scan's overlap, so their keys are never needed again.
constexpr double kKeepDelivered = 7 * 86400;
constexpr char kDropDelivered[] =
    "DELETE FROM alert_outbox WHERE delivered_at > 0 AND delivered_at < $1";
constexpr char kClaim[] =
    "WITH due AS (SELECT id FROM alert_outbox WHERE delivered_at = 0 AND next_at <= $1 AND "
    "lease_until <= $1 ORDER BY next_at, id LIMIT $2 FOR UPDATE SKIP LOCKED) "
    "UPDATE alert_outbox a SET lease_owner = $3, lease_until = $4 FROM due WHERE a.id = due.id "
    "RETURNING a.id, a.dedupe_key, a.kind, a.run_id, a.workflow, a.status, a.error, "
    "a.breaker_key, a.at, a.attempts, a.next_at";
constexpr char kDelivered[] =
    "UPDATE alert_outbox SET delivered_at = $3, attempts = attempts + 1, lease_until = 0, "
    "last_error = '' WHERE id = $1 AND lease_owner = $2 AND delivered_at = 0";
constexpr char kFailed[] =
    "UPDATE alert_outbox SET attempts = attempts + 1, next_at = $3, lease_until = 0, "
    "lease_owner = '', last_error = $4 WHERE id = $1 AND lease_owner = $2 AND delivered_at = 0";

}  // namespace

Result<int64_t> ScanAlerts(Connection& conn, double now, double overlap_s) {
  int64_t added = 0;
  Status status = conn.Transaction(
      [&](Connection& c) -> Status {
        added = 0;
        auto locked = c.Exec("SELECT pg_advisory_xact_lock($1)", {Num(kAlertScanLock)},
                             "taking the alert scan lock");
        if (!locked.ok()) return locked.status();
        auto cursors = c.Exec(kReadCursors, {}, "reading the alert cursors");
        if (!cursors.ok()) return cursors.status();
        bool has_since = false;
        double since = 0, runs_cursor = 0, breakers_cursor = 0;
        for (int i = 0; i < cursors->size(); ++i) {
          std::string_view name = cursors->text(i, 0);
          double position = cursors->real(i, 1);
          if (name == "since") {
            has_since = true;
            since = position;
          } else if (name == "runs") {
            runs_cursor = position;
          } else if (name == "breakers") {
            breakers_cursor = position;
          }
        }
        if (!has_since) {
          // The first scan of this database: alerting starts now.
          auto set = c.Pipeline({{kWriteCursor, {"since", Num(now)}},
                                 {kWriteCursor, {"runs", Num(now)}},
                                 {kWriteCursor, {"breakers", Num(now)}}},
                                "writing the alert cursors");
          return set.ok() ? Status::Ok() : set.status();
        }
        std::vector<Statement> inserts;
        auto add = [&](const std::string& key, const std::string& kind, const std::string& run_id,
                       const std::string& workflow, const std::string& state,
                       const std::string& error, const std::string& breaker, double at) {
          inserts.push_back(
              {kInsertAlert,
               {key, kind, run_id, workflow, state, error, breaker, Num(at), Num(now)}});
        };
        auto runs = c.Exec(kFinishedRuns, {Num(std::max(since, runs_cursor - overlap_s))},
                           "reading finished runs");
        if (!runs.ok()) return runs.status();
        double runs_seen = runs_cursor;
        for (int i = 0; i < runs->size(); ++i) {
          std::string run_status = runs->str(i, 2);
          add("run:" + runs->str(i, 0) + ":" + run_status + ":e" + runs->str(i, 5),
              "run_" + run_status, runs->str(i, 0), runs->str(i, 1), run_status, runs->str(i, 3),
              "", runs->real(i, 4));
          runs_seen = std::max(runs_seen, runs->real(i, 4));
        }
        auto breakers = c.Exec(kOpenedBreakers, {Num(std::max(since, breakers_cursor - overlap_s))},
                               "reading opened breakers");
        if (!breakers.ok()) return breakers.status();
        double breakers_seen = breakers_cursor;
        for (int i = 0; i < breakers->size(); ++i) {
          double opened_at = breakers->real(i, 2);
          char stamp[32];
          std::snprintf(stamp, sizeof stamp, "%.6f", opened_at);
          add("breaker:" + breakers->str(i, 0) + ":" + stamp, "breaker_open", "", "",
              breakers->str(i, 1), "", breakers->str(i, 0), opened_at);
          breakers_seen = std::max(breakers_seen, opened_at);
        }
        const size_t alerts = inserts.size();
        inserts.push_back({kDropDelivered, {Num(now - kKeepDelivered)}});
        // Past `now - overlap_s` nothing new is expected late, so the cursors
        // move up to it even when nothing was found: each scan reads a bounded
        // stretch of the history, however long ago the last alert was.
        inserts.push_back({kWriteCursor, {"runs", Num(std::max(runs_seen, now - overlap_s))}});
        inserts.push_back(
            {kWriteCursor, {"breakers", Num(std::max(breakers_seen, now - overlap_s))}});
        auto written = c.Pipeline(inserts, "adding alerts");
        if (!written.ok()) return written.status();
        for (size_t i = 0; i < alerts; ++i) added += (*written)[i].affected();
        return Status::Ok();
      },
      "scanning for alerts");
  if (!status.ok()) return status;
  return added;
}

Result<std::vector<Store::AlertRow>> ClaimAlerts(Connection& conn, const std::string& owner,
                                                 double now, double lease_s, int limit) {
  std::vector<Store::AlertRow> rows;
  Status status = conn.Transaction(
      [&](Connection& c) -> Status {
        rows.clear();
        // A negative limit takes every due row, as SQLite's LIMIT does.
        std::optional<std::string> most;
        if (limit >= 0) most = Num(limit);
        auto claimed =
            c.Exec(kClaim, {Num(now), most, owner, Num(now + lease_s)}, "claiming alerts");
        if (!claimed.ok()) return claimed.status();
        std::vector<std::pair<double, int>> order;  // (next_at, row)
        for (int i = 0; i < claimed->size(); ++i) order.emplace_back(claimed->real(i, 10), i);
        std::sort(order.begin(), order.end(), [&](const auto& a, const auto& b) {
          if (a.first != b.first) return a.first < b.first;
          return claimed->int64(a.second, 0) < claimed->int64(b.second, 0);
        });
        for (const auto& [next_at, i] : order) {
          Store::AlertRow& row = rows.emplace_back();
          row.id = claimed->int64(i, 0);
          row.dedupe_key = claimed->str(i, 1);
          row.kind = claimed->str(i, 2);
          row.run_id = claimed->str(i, 3);
          row.workflow = claimed->str(i, 4);
          row.status = claimed->str(i, 5);
          row.error = claimed->str(i, 6);
          row.breaker_key = claimed->str(i, 7);
          row.at = claimed->real(i, 8);
          row.attempts = static_cast<int>(claimed->int64(i, 9));
        }
        return Status::Ok();
      },
      "claiming alerts");
  if (!status.ok()) return status;
  return rows;
}

Result<bool> CompleteAlert(Connection& conn, int64_t id, const std::string& owner, bool delivered,
                           double now, double retry_at, const std::string& error) {
  bool held = false;
  Status status = conn.Transaction(
      [&](Connection& c) -> Status {
        auto done = delivered ? c.Exec(kDelivered, {Num(id), owner, Num(now)},
                                       "recording the delivery of alert " + std::to_string(id))
                              : c.Exec(kFailed, {Num(id), owner, Num(retry_at), error},
                                       "recording the delivery of alert " + std::to_string(id));
        if (!done.ok()) return done.status();
        held = done->affected() > 0;
        return Status::Ok();
      },
      "recording the delivery of alert " + std::to_string(id));
  if (!status.ok()) return status;
  return held;
}

}  // namespace keel::pg
