// The SQLite store's signals and cancellation (schema version 7): the
// writer's transactions behind Store::SendSignal, TakeSignal and CancelRun,
// and the reader's cheap looks behind TakeSignal and CancelRequested.

#include <sqlite3.h>

#include "store/sqlite/sqlite_reader.h"
#include "store/sqlite/sqlite_rows.h"
#include "store/sqlite/sqlite_writer.h"

namespace keel::sqlite {
namespace {

constexpr char kRunStatus[] = "SELECT status, cancel_requested FROM runs WHERE id = ?1";
constexpr char kInsertSignal[] =
    "INSERT INTO signals (run_id, name, data_json, sent_at) VALUES (?1, ?2, ?3, ?4)";
// The signal node ?3 took before, else the oldest one not taken.
constexpr char kFindSignal[] =
    "SELECT id, data_json, taken_by IS NULL FROM signals WHERE run_id = ?1 AND name = ?2 "
    "AND (taken_by = ?3 OR taken_by IS NULL) ORDER BY taken_by IS NULL, id LIMIT 1";
constexpr char kTakeSignal[] = "UPDATE signals SET taken_by = ?2, taken_at = ?3 WHERE id = ?1";
constexpr char kRequestCancel[] = "UPDATE runs SET cancel_requested = ?2 WHERE id = ?1";
constexpr char kCancelRun[] =
    "UPDATE runs SET status = 'cancelled', error = 'cancelled by keel cancel', finished_at = ?2, "
    "updated_at = ?2, cancel_requested = ?2, epoch = epoch + 1 WHERE id = ?1";
constexpr char kCancelNodes[] =
    "UPDATE nodes SET status = 'cancelled', error_kind = 'cancelled', "
    "error_message = 'run cancelled', finished_at = ?2 "
    "WHERE run_id = ?1 AND status IN ('running', 'waiting')";
constexpr char kCancelEvent[] =
    "INSERT INTO events (run_id, seq, ts, node, kind, data_json) "
    "SELECT ?1, COALESCE(MAX(seq), 0) + 1, ?2, '', 'run_cancelled', ?3 FROM events "
    "WHERE run_id = ?1";

bool Finished(RunStatus status) {
  return status == RunStatus::kSucceeded || status == RunStatus::kFailed ||
         status == RunStatus::kDegraded || status == RunStatus::kCancelled;
}

// The status and cancel request of run `run_id` on `conn`; false when there
// is no such run.
Result<bool> ReadStatus(Connection* conn, const std::string& run_id, RunStatus* status,
                        double* cancel_requested) {
  Statement stmt;
  Status s = stmt.Prepare(conn, kRunStatus);
  if (!s.ok()) return s;
  stmt.Bind(1, run_id);
  bool found = stmt.Step(&s, "reading run " + run_id);
  if (found) {
    *status = RunStatus::kFailed;
    ParseRunStatus(stmt.Text(0), status);
    *cancel_requested = stmt.Real(1);
  }
  stmt.Reset();
  if (!s.ok()) return s;
  return found;
}

Status Exec(Connection* conn, const char* sql, const std::function<void(Statement&)>& bind,
            std::string_view what) {
  Statement stmt;
  Status s = stmt.Prepare(conn, sql);
  if (!s.ok()) return s;
  bind(stmt);
  return stmt.Run(what);
}

}  // namespace

Status SqliteWriter::RefuseCancelled(const std::string& run_id, RunStatus status) {
  if (status == RunStatus::kCancelled) {
    return Status::Error(ErrorKind::kPermanent,
                         "run " + run_id + " was cancelled; a cancelled run cannot be resumed");
  }
  double requested = 0;
  auto found = ReadStatus(conn_.get(), run_id, &status, &requested);
  if (!found.ok()) return found.status();
  if (requested > 0) {
    return Status::Error(ErrorKind::kPermanent,
                         "run " + run_id +
                             " was asked to cancel; it cannot be resumed (`keel "
                             "cancel " +
                             run_id + "` records it cancelled)");
  }
  return Status::Ok();
}

Status SqliteWriter::SendSignal(const std::string& run_id, const std::string& name,
                                const std::string& data_json, double now) {
  return InTransaction([&] {
    RunStatus status;
    double requested = 0;
    auto found = ReadStatus(conn_.get(), run_id, &status, &requested);
    if (!found.ok()) return found.status();
    if (!*found) {
      return Status::Error(ErrorKind::kPermanent, "no run '" + run_id + "' in " + conn_->path());
    }
    if (Finished(status)) {
      return Status::Error(ErrorKind::kPermanent, "run " + run_id + " already " +
                                                      std::string(RunStatusName(status)) +
                                                      "; a finished run takes no signals");
    }
    return Exec(
        conn_.get(), kInsertSignal,
        [&](Statement& st) { st.Bind(1, run_id).Bind(2, name).Bind(3, data_json).Bind(4, now); },
        "storing signal '" + name + "' of run " + run_id);
  });
}

Result<std::optional<std::string>> SqliteWriter::TakeSignal(const std::string& run_id,
                                                            const std::string& name,
                                                            const std::string& node, double now) {
  std::optional<std::string> data;
  Status status = InTransaction([&] {
    Status s = CheckEpoch(run_id);
    if (!s.ok()) return s;
    Statement find;
    s = find.Prepare(conn_.get(), kFindSignal);
    if (!s.ok()) return s;
    find.Bind(1, run_id).Bind(2, name).Bind(3, node);
    int64_t id = 0;
    bool untaken = false;
    if (find.Step(&s, "reading signal '" + name + "' of run " + run_id)) {
      id = find.Int(0);
      data = find.Text(1);
      untaken = find.Int(2) != 0;
    }
    find.Reset();
    if (!s.ok() || !untaken) return s;
    return Exec(
        conn_.get(), kTakeSignal, [&](Statement& st) { st.Bind(1, id).Bind(2, node).Bind(3, now); },
        "taking signal '" + name + "' of run " + run_id);
  });
  if (!status.ok()) return status;
  return data;
}

Result<CancelOutcome> SqliteWriter::CancelRun(
    const std::string& run_id, double now,
    const std::function<bool(const Owner&, double)>& owner_alive) {
  CancelOutcome outcome = CancelOutcome::kCancelled;
  Status status = InTransaction([&] {
    Status s;
    RunRecord run;
    run_full_.Bind(1, run_id);
    bool found = run_full_.Step(&s, "reading run " + run_id);
    if (found) RunFromRow(run_full_, &run);
    run_full_.Reset();
    if (!s.ok()) return s;
    if (!found) {
      return Status::Error(ErrorKind::kPermanent, "no run '" + run_id + "' in " + conn_->path());
    }
    if (run.status == RunStatus::kCancelled) {
      return Status::Error(ErrorKind::kPermanent, "run " + run_id + " was already cancelled");
    }
    if (Finished(run.status)) {
      return Status::Error(ErrorKind::kPermanent, "run " + run_id + " already " +
                                                      std::string(RunStatusName(run.status)) +
                                                      "; nothing to cancel");
    }
    if (run.status == RunStatus::kRunning && owner_alive(run.owner, now - run.heartbeat)) {
      outcome = CancelOutcome::kRequested;
      return Exec(
          conn_.get(), kRequestCancel, [&](Statement& st) { st.Bind(1, run_id).Bind(2, now); },
          "asking run " + run_id + " to cancel");
    }
    s = Exec(
        conn_.get(), kCancelRun, [&](Statement& st) { st.Bind(1, run_id).Bind(2, now); },
        "cancelling run " + run_id);
    if (s.ok()) {
      s = Exec(
          conn_.get(), kCancelNodes, [&](Statement& st) { st.Bind(1, run_id).Bind(2, now); },
          "cancelling the nodes of run " + run_id);
    }
    if (s.ok()) {
      std::string data = "{\"was\":\"" + std::string(RunStatusName(run.status)) + "\"}";
      s = Exec(
          conn_.get(), kCancelEvent,
          [&](Statement& st) { st.Bind(1, run_id).Bind(2, now).Bind(3, data); },
          "recording the cancel of run " + run_id);
    }
    return s;
  });
  // This connection's event numbering for the run may be stale now.
  next_seq_.erase(run_id);
  if (!status.ok()) return status;
  return outcome;
}

Result<bool> SqliteReader::HasSignal(const std::string& run_id, const std::string& name,
                                     const std::string& node) {
  Statement find;
  Status s = find.Prepare(conn_.get(), kFindSignal);
  if (!s.ok()) return s;
  find.Bind(1, run_id).Bind(2, name).Bind(3, node);
  bool found = find.Step(&s, "reading signal '" + name + "' of run " + run_id);
  find.Reset();
  if (!s.ok()) return s;
  return found;
}

Result<bool> SqliteReader::CancelRequested(const std::string& run_id) {
  RunStatus status;
  double requested = 0;
  auto found = ReadStatus(conn_.get(), run_id, &status, &requested);
  if (!found.ok()) return found.status();
  return *found && (requested > 0 || status == RunStatus::kCancelled);
}

}  // namespace keel::sqlite
