// The SQLite store's global event cursor (schema version 8): events.cursor,
// an AUTOINCREMENT key, read by Store::ReadEventsAfter and LastEventCursor;
// and Store::CountState, the present state the metrics read beside it.

#include <string_view>

#include "store/sqlite/sqlite_read_only_store.h"
#include "store/sqlite/sqlite_reader.h"
#include "store/sqlite/sqlite_schema.h"
#include "store/sqlite/sqlite_store.h"

namespace keel {
namespace sqlite {
namespace {

constexpr char kAfter[] =
    "SELECT cursor, run_id, seq, ts, node, kind, data_json FROM events "
    "WHERE cursor > ?1 ORDER BY cursor LIMIT ?2";
constexpr char kAfterInRun[] =
    "SELECT cursor, run_id, seq, ts, node, kind, data_json FROM events "
    "WHERE run_id = ?3 AND cursor > ?1 ORDER BY cursor LIMIT ?2";
// sqlite_sequence keeps the highest AUTOINCREMENT key ever given, which the
// next insert continues from, so gc deleting the newest events does not
// lower it.
constexpr char kLast[] = "SELECT seq FROM sqlite_sequence WHERE name = 'events'";

// Covered by runs_by_status (status, created_at).
constexpr char kRunsByStatus[] =
    "SELECT status, count(*), min(created_at) FROM runs GROUP BY status ORDER BY status";
constexpr char kSignalsPending[] = "SELECT count(*) FROM signals WHERE taken_by IS NULL";

// The schema version that added events.cursor.
constexpr int kCursorVersion = 8;

// `failure`, or a clearer error when the database predates event cursors
// (only a read-only store sees one: a writable store migrates on open).
Status Explain(Connection* conn, Status failure) {
  auto version = ReadPragma(conn, "user_version");
  if (version.ok() && *version < kCursorVersion) {
    return Status::Error(ErrorKind::kPermanent,
                         conn->path() + " has schema version " + std::to_string(*version) +
                             ", before event cursors (version 8); open it once with a keel "
                             "that may write it to migrate it");
  }
  return failure;
}

}  // namespace

Result<std::vector<Store::CursorEvent>> SqliteReader::ReadEventsAfter(int64_t after,
                                                                      const std::string& run_id,
                                                                      int limit) {
  Statement stmt;
  Status status = stmt.Prepare(conn_.get(), run_id.empty() ? kAfter : kAfterInRun);
  if (!status.ok()) return status;
  stmt.Bind(1, after).Bind(2, limit);
  if (!run_id.empty()) stmt.Bind(3, run_id);
  std::vector<Store::CursorEvent> events;
  while (stmt.Step(&status, "reading events by cursor")) {
    Store::CursorEvent& row = events.emplace_back();
    row.cursor = stmt.Int(0);
    row.event.run_id = stmt.Text(1);
    row.event.seq = stmt.Int(2);
    row.event.ts = stmt.Real(3);
    row.event.node = stmt.Text(4);
    row.event.kind = stmt.Text(5);
    row.event.data_json = stmt.Text(6);
  }
  stmt.Reset();
  if (!status.ok()) return Explain(conn_.get(), status);
  return events;
}

Result<int64_t> SqliteReader::LastEventCursor() {
  Statement stmt;
  Status status = stmt.Prepare(conn_.get(), kLast);
  if (!status.ok()) return status;
  int64_t last = 0;
  if (stmt.Step(&status, "reading the last event cursor")) last = stmt.Int(0);
  stmt.Reset();
  if (!status.ok()) return Explain(conn_.get(), status);
  return last;
}

Result<Store::StateCounts> SqliteReader::CountState() {
  Store::StateCounts counts;
  Statement runs;
  Status status = runs.Prepare(conn_.get(), kRunsByStatus);
  if (!status.ok()) return status;
  while (runs.Step(&status, "counting runs")) {
    counts.runs.emplace_back(runs.Text(0), runs.Int(1));
    if (runs.Text(0) == RunStatusName(RunStatus::kQueued)) counts.oldest_queued_at = runs.Real(2);
  }
  runs.Reset();
  if (!status.ok()) return status;
  Statement signals;
  status = signals.Prepare(conn_.get(), kSignalsPending);
  if (!status.ok()) return status;
  if (signals.Step(&status, "counting signals")) counts.signals_pending = signals.Int(0);
  signals.Reset();
  if (!status.ok()) return status;
  return counts;
}

}  // namespace sqlite

Result<std::vector<Store::CursorEvent>> SqliteStore::ReadEventsAfter(int64_t after,
                                                                     const std::string& run_id,
                                                                     int limit) {
  MutexLock lock(&read_mu_);
  return reader_->ReadEventsAfter(after, run_id, limit);
}

Result<int64_t> SqliteStore::LastEventCursor() {
  MutexLock lock(&read_mu_);
  return reader_->LastEventCursor();
}

Result<Store::StateCounts> SqliteStore::CountState() {
  MutexLock lock(&read_mu_);
  return reader_->CountState();
}

Result<Store::StateCounts> SqliteReadOnlyStore::CountState() {
  MutexLock lock(&mu_);
  return reader_->CountState();
}

Result<std::vector<Store::CursorEvent>> SqliteReadOnlyStore::ReadEventsAfter(
    int64_t after, const std::string& run_id, int limit) {
  MutexLock lock(&mu_);
  return reader_->ReadEventsAfter(after, run_id, limit);
}

Result<int64_t> SqliteReadOnlyStore::LastEventCursor() {
  MutexLock lock(&mu_);
  return reader_->LastEventCursor();
}

}  // namespace keel
