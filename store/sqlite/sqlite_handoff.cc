// The SQLite store's side of starting and supervising runs (schema version
// 9): the reads that find runs `keel serve` may start or resume
// (ListRunsToStart) and the write transactions that hand a run to it, give a
// run back, and note something about a run once (HandOffRun, ReleaseRun,
// AppendEventOnce). Every decision is one BEGIN IMMEDIATE transaction fenced
// by the run's epoch, so two servers on one database never both take a run.

#include <sqlite3.h>

#include "store/sqlite/sqlite_reader.h"
#include "store/sqlite/sqlite_rows.h"
#include "store/sqlite/sqlite_store.h"
#include "store/sqlite/sqlite_writer.h"

namespace keel::sqlite {
namespace {

// The listing columns (script_text left out), then the auto-resume count and
// whether the limit was noted: both read through the partial indexes of
// migration 9 (named, as the planner would otherwise scan the run's events
// by the primary key).
std::string CandidateColumns() {
  return std::string("SELECT ") + kRunColumnsHead + "''" + kRunColumnsTail +
         ", (SELECT COUNT(*) FROM events e INDEXED BY events_auto_resumed WHERE e.run_id = "
         "runs.id AND e.kind = 'auto_resumed'), EXISTS (SELECT 1 FROM events e INDEXED BY "
         "events_auto_resume_limit WHERE e.run_id = runs.id AND e.kind = 'auto_resume_limit') "
         "FROM runs ";
}

// A waiting run is due when one of its waiting nodes (status 'waiting', the
// wait recorded as {"signal": NAME, "due": T} in output_json) has a signal it
// may take, or a due time that has come. ?1 = now, ?2 = limit.
constexpr char kDueWaits[] =
    "WHERE status = 'waiting' AND EXISTS (SELECT 1 FROM nodes n WHERE n.run_id = runs.id AND "
    "n.status = 'waiting' AND ((json_extract(n.output_json, '$.due') > 0 AND "
    "json_extract(n.output_json, '$.due') <= ?1) OR EXISTS (SELECT 1 FROM signals s WHERE "
    "s.run_id = runs.id AND s.name = json_extract(n.output_json, '$.signal') AND "
    "(s.taken_by IS NULL OR s.taken_by = n.node)))) ORDER BY created_at LIMIT ?2";
constexpr char kQueued[] = "WHERE status = 'queued' ORDER BY created_at LIMIT ?1";
constexpr char kStopped[] =
    "WHERE status IN ('interrupted', 'running') ORDER BY MAX(heartbeat, updated_at) LIMIT ?1";

// Whether a signal run `run_id` may take has arrived for one of its waiting
// nodes: tells "signal" from "timer".
constexpr char kSignalArrived[] =
    "SELECT EXISTS (SELECT 1 FROM nodes n JOIN signals s ON s.run_id = n.run_id AND s.name = "
    "json_extract(n.output_json, '$.signal') AND (s.taken_by IS NULL OR s.taken_by = n.node) "
    "WHERE n.run_id = ?1 AND n.status = 'waiting')";

constexpr char kRunForHandoff[] =
    "SELECT status, epoch, owner_pid, owner_host, owner_start, heartbeat, cancel_requested "
    "FROM runs WHERE id = ?1";
constexpr char kHandOff[] =
    "UPDATE runs SET owner_pid = ?2, owner_host = ?3, owner_start = ?4, heartbeat = ?5, "
    "epoch = epoch + 1 WHERE id = ?1 AND epoch = ?6";
constexpr char kRelease[] =
    "UPDATE runs SET owner_pid = ?2, owner_host = ?3, owner_start = 0, epoch = epoch + 1, "
    "status = CASE WHEN ?5 = '' THEN status ELSE 'failed' END, "
    "error = CASE WHEN ?5 = '' THEN error ELSE ?5 END, "
    "finished_at = CASE WHEN ?5 = '' THEN finished_at ELSE ?4 END, updated_at = ?4 "
    "WHERE id = ?1 AND epoch = ?6";
constexpr char kAppendEvent[] =
    "INSERT INTO events (run_id, seq, ts, node, kind, data_json) "
    "SELECT ?1, COALESCE(MAX(seq), 0) + 1, ?2, ?3, ?4, ?5 FROM events WHERE run_id = ?1";
constexpr char kHasEventKind[] = "SELECT 1 FROM events WHERE run_id = ?1 AND kind = ?2 LIMIT 1";

Status Prepared(Statement* stmt, Connection* conn, const char* sql) {
  return stmt->Prepare(conn, sql);
}

Status InsertEvent(Connection* conn, const EventRecord& event) {
  Statement insert;
  Status s = Prepared(&insert, conn, kAppendEvent);
  if (!s.ok()) return s;
  insert.Bind(1, event.run_id)
      .Bind(2, event.ts)
      .Bind(3, event.node)
      .Bind(4, event.kind)
      .Bind(5, event.data_json);
  return insert.Run("recording " + event.kind + " of run " + event.run_id);
}

}  // namespace

Result<std::vector<Store::StartCandidate>> SqliteReader::ListRunsToStart(double now, bool stopped,
                                                                         int limit) {
  std::vector<Store::StartCandidate> found;
  const std::string head = CandidateColumns();
  auto read = [&](const std::string& sql, bool with_now, const char* reason) -> Status {
    Statement stmt;
    Status s = stmt.Prepare(conn_.get(), sql.c_str());
    if (!s.ok()) return s;
    if (with_now) {
      stmt.Bind(1, now).Bind(2, limit);
    } else {
      stmt.Bind(1, limit);
    }
    while (stmt.Step(&s, "listing runs to start")) {
      Store::StartCandidate& c = found.emplace_back();
      RunFromRow(stmt, &c.run);
      c.reason = reason;
      c.auto_resumes = static_cast<int>(stmt.Int(kRunColumnCount));
      c.limit_noted = stmt.Int(kRunColumnCount + 1) != 0;
    }
    stmt.Reset();
    return s;
  };
  Status s = read(head + kQueued, false, "queued");
  size_t waits_from = found.size();
  if (s.ok()) s = read(head + kDueWaits, true, "timer");
  if (s.ok()) {
    Statement arrived;
    s = arrived.Prepare(conn_.get(), kSignalArrived);
    for (size_t i = waits_from; s.ok() && i < found.size(); ++i) {
      arrived.Bind(1, found[i].run.id);
      if (arrived.Step(&s, "reading signals") && arrived.Int(0) != 0) found[i].reason = "signal";
      arrived.Reset();
    }
  }
  if (s.ok() && stopped) {
    size_t stopped_from = found.size();
    s = read(head + kStopped, false, "running");
    for (size_t i = stopped_from; i < found.size(); ++i) {
      if (found[i].run.status == RunStatus::kInterrupted) found[i].reason = "interrupted";
    }
  }
  if (!s.ok()) return s;
  return found;
}

Result<int64_t> SqliteWriter::HandOffRun(
    const std::string& run_id, int64_t expected_epoch, const Owner& to, double now,
    const EventRecord& event, const std::function<bool(const Owner&, double)>& owner_alive) {
  int64_t epoch = 0;
  Status status = InTransaction([&] {
    Statement read;
    Status s = read.Prepare(conn_.get(), kRunForHandoff);
    if (!s.ok()) return s;
    read.Bind(1, run_id);
    bool found = read.Step(&s, "reading run " + run_id);
    RunStatus run_status = RunStatus::kFailed;
    Owner owner;
    double heartbeat = 0;
    double cancel_requested = 0;
    if (found) {
      ParseRunStatus(read.Text(0), &run_status);
      epoch = read.Int(1);
      owner = {read.Int(2), read.Text(3), read.Int(4)};
      heartbeat = read.Real(5);
      cancel_requested = read.Real(6);
    }
    read.Reset();
    if (!s.ok()) return s;
    if (!found) {
      return Status::Error(ErrorKind::kPermanent, "no run '" + run_id + "' in " + conn_->path());
    }
    if (run_status == RunStatus::kCancelled || cancel_requested > 0) {
      return Status::Error(ErrorKind::kPermanent, "run " + run_id + " was cancelled");
    }
    if (epoch != expected_epoch) {
      return Status::Error(ErrorKind::kPermanent,
                           "run " + run_id + " was taken over by another process meanwhile");
    }
    if (owner_alive(owner, now - heartbeat)) {
      return Status::Error(ErrorKind::kPermanent,
                           "run " + run_id + " is owned by the live process " +
                               std::to_string(owner.pid) + "@" + owner.host);
    }
    Statement update;
    s = update.Prepare(conn_.get(), kHandOff);
    if (!s.ok()) return s;
    update.Bind(1, run_id)
        .Bind(2, to.pid)
        .Bind(3, to.host)
        .Bind(4, to.start_ticks)
        .Bind(5, now)
        .Bind(6, expected_epoch);
    s = update.Run("handing run " + run_id + " over");
    if (s.ok() && sqlite3_changes(conn_->get()) != 1) {
      s = Status::Error(ErrorKind::kPermanent, "run " + run_id + " changed while handed over");
    }
    if (s.ok() && !event.kind.empty()) s = InsertEvent(conn_.get(), event);
    return s;
  });
  next_seq_.erase(run_id);
  if (!status.ok()) return status;
  return epoch + 1;
}

Status SqliteWriter::ReleaseRun(const std::string& run_id, int64_t epoch, const Owner& none,
                                double now, const std::string& error) {
  Status status = InTransaction([&] {
    Statement update;
    Status s = update.Prepare(conn_.get(), kRelease);
    if (!s.ok()) return s;
    update.Bind(1, run_id).Bind(2, none.pid).Bind(3, none.host).Bind(4, now).Bind(5, error).Bind(
        6, epoch);
    s = update.Run("giving run " + run_id + " back");
    if (s.ok() && sqlite3_changes(conn_->get()) != 1) {
      s = Status::Error(ErrorKind::kPermanent,
                        "run " + run_id + " was claimed or changed since it was handed over");
    }
    return s;
  });
  next_seq_.erase(run_id);
  return status;
}

Status SqliteWriter::AppendEventOnce(const EventRecord& event) {
  Status status = InTransaction([&] {
    Statement has;
    Status s = has.Prepare(conn_.get(), kHasEventKind);
    if (!s.ok()) return s;
    has.Bind(1, event.run_id).Bind(2, event.kind);
    bool present = has.Step(&s, "reading the events of run " + event.run_id);
    has.Reset();
    if (!s.ok() || present) return s;
    return InsertEvent(conn_.get(), event);
  });
  next_seq_.erase(event.run_id);
  return status;
}

}  // namespace keel::sqlite

namespace keel {

Result<std::vector<Store::StartCandidate>> SqliteStore::ListRunsToStart(double now, bool stopped,
                                                                        int limit) {
  MutexLock lock(&read_mu_);
  return reader_->ListRunsToStart(now, stopped, limit);
}

Result<int64_t> SqliteStore::HandOffRun(
    const std::string& run_id, int64_t expected_epoch, const Owner& to, double now,
    const EventRecord& event, const std::function<bool(const Owner&, double)>& owner_alive) {
  int64_t epoch = 0;
  Status status = CallOnWriter([&](sqlite::SqliteWriter* writer) {
    auto result = writer->HandOffRun(run_id, expected_epoch, to, now, event, owner_alive);
    if (!result.ok()) return result.status();
    epoch = *result;
    return Status::Ok();
  });
  if (!status.ok()) return status;
  return epoch;
}

Status SqliteStore::ReleaseRun(const std::string& run_id, int64_t epoch, const Owner& none,
                               double now, const std::string& error) {
  return CallOnWriter([&](sqlite::SqliteWriter* writer) {
    return writer->ReleaseRun(run_id, epoch, none, now, error);
  });
}

Status SqliteStore::AppendEventOnce(const EventRecord& event) {
  return CallOnWriter([&](sqlite::SqliteWriter* writer) { return writer->AppendEventOnce(event); });
}

}  // namespace keel
