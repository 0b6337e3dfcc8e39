#include "store/postgres/pg_waits.h"

#include <vector>

#include "store/postgres/pg_rows.h"

namespace keel::pg {
namespace {

// FOR SHARE: a finish or a cancel of the run waits until the signal is stored.
constexpr char kRunForSignal[] =
    "SELECT status, cancel_requested FROM runs WHERE id = $1 FOR SHARE";
constexpr char kInsertSignal[] =
    "INSERT INTO signals (run_id, name, data_json, sent_at) VALUES ($1, $2, $3, $4)";
// FOR UPDATE: two takers of one run's signals (two processes working on it)
// take turns, so the second sees what the first took.
constexpr char kRunForTake[] = "SELECT epoch, status FROM runs WHERE id = $1 FOR UPDATE";
// The run's epoch and status, and whether node $3 has a signal $2 to take.
constexpr char kLookForSignal[] =
    "SELECT epoch, status, EXISTS (SELECT 1 FROM signals s WHERE s.run_id = $1 AND s.name = $2 "
    "AND (s.taken_by = $3 OR s.taken_by IS NULL)) FROM runs WHERE id = $1";
// The signal node $3 took before, else the oldest one not taken.
constexpr char kFindSignal[] =
    "SELECT id, data_json, taken_by IS NULL FROM signals WHERE run_id = $1 AND name = $2 "
    "AND (taken_by = $3 OR taken_by IS NULL) ORDER BY taken_by IS NULL, id LIMIT 1";
constexpr char kTakeSignal[] =
    "UPDATE signals SET taken_by = $2, taken_at = $3 WHERE id = $1 AND taken_by IS NULL";
constexpr char kRequestCancel[] = "UPDATE runs SET cancel_requested = $2 WHERE id = $1";
constexpr char kCancelRun[] =
    "UPDATE runs SET status = 'cancelled', error = 'cancelled by keel cancel', finished_at = $2, "
    "updated_at = $2, cancel_requested = $2, epoch = epoch + 1 WHERE id = $1";
constexpr char kCancelNodes[] =
    "UPDATE nodes SET status = 'cancelled', error_kind = 'cancelled', "
    "error_message = 'run cancelled', finished_at = $2 "
    "WHERE run_id = $1 AND status IN ('running', 'waiting')";
// Deletes a distributed run's queue rows, logging the claims it ends;
// answers how many rows there were.
constexpr char kEndQueue[] =
    "WITH d AS (DELETE FROM node_queue WHERE run_id = $1 RETURNING node, state, attempt, "
    "worker_id), l AS (INSERT INTO claim_log (run_id, node, attempt, worker_id, action) "
    "SELECT $1, node, attempt, worker_id, 'cancel' FROM d WHERE state = 'claimed') "
    "SELECT count(*) FROM d";
constexpr char kCancelState[] = "SELECT status, cancel_requested FROM runs WHERE id = $1";

bool Finished(RunStatus status) {
  return status == RunStatus::kSucceeded || status == RunStatus::kFailed ||
         status == RunStatus::kDegraded || status == RunStatus::kCancelled;
}

RunStatus StatusOf(const Rows& rows, int col) {
  RunStatus status = RunStatus::kFailed;
  ParseRunStatus(rows.text(0, col), &status);
  return status;
}

// Refuses a take for a run that is gone, was taken over (its epoch, column
// 0 of `run`, is not `held_epoch`; not checked when `held_epoch` <= 0) or
// was cancelled (its status, column 1).
Status Fence(const Connection& conn, const Rows& run, const std::string& run_id,
             int64_t held_epoch) {
  if (run.size() == 0) {
    return Status::Error(ErrorKind::kPermanent, "run " + run_id + " was deleted from " +
                                                    conn.name() + " by another process");
  }
  int64_t epoch = run.int64(0, 0);
  if (held_epoch > 0 && epoch != held_epoch) {
    return Status::Error(ErrorKind::kPermanent,
                         "run " + run_id + " was taken over by another process (epoch " +
                             std::to_string(epoch) + ", this process holds " +
                             std::to_string(held_epoch) + "); this process stops writing it");
  }
  if (StatusOf(run, 1) == RunStatus::kCancelled) {
    return Status::Error(ErrorKind::kPermanent,
                         "run " + run_id + " was cancelled; it takes no more signals");
  }
  return Status::Ok();
}

Status NoRun(const Connection& conn, const std::string& run_id) {
  return Status::Error(ErrorKind::kPermanent, "no run '" + run_id + "' in " + conn.name());
}

}  // namespace

Status SendSignal(Connection& conn, const std::string& run_id, const std::string& name,
                  const std::string& data_json, double now) {
  return conn.Transaction(
      [&](Connection& c) -> Status {
        auto run = c.Exec(kRunForSignal, {run_id}, "reading run " + run_id);
        if (!run.ok()) return run.status();
        if (run->size() == 0) return NoRun(c, run_id);
        RunStatus status = StatusOf(*run, 0);
        if (Finished(status)) {
          return Status::Error(ErrorKind::kPermanent, "run " + run_id + " already " +
                                                          std::string(RunStatusName(status)) +
                                                          "; a finished run takes no signals");
        }
        auto stored = c.Exec(kInsertSignal, {run_id, name, data_json, Num(now)},
                             "storing signal '" + name + "' of run " + run_id);
        return stored.ok() ? Status::Ok() : stored.status();
      },
      "sending signal '" + name + "' to run " + run_id);
}

Result<std::optional<std::string>> TakeSignal(Connection& conn, const std::string& run_id,
                                              const std::string& name, const std::string& node,
                                              double now, int64_t held_epoch) {
  std::optional<std::string> data;
  const std::string what = "taking signal '" + name + "' of run " + run_id;
  // A wait polls: when no signal is there to take, say so (or refuse) after
  // one read that locks nothing.
  auto look = conn.Exec(kLookForSignal, {run_id, name, node}, what);
  if (!look.ok() && look.status().kind() == ErrorKind::kTransient && conn.Healthy()) {
    // The connection was lost (a server restart): reconnected, read again,
    // as Transaction would.
    look = conn.Exec(kLookForSignal, {run_id, name, node}, what);
  }
  if (!look.ok()) return look.status();
  Status fence = Fence(conn, *look, run_id, held_epoch);
  if (!fence.ok()) return fence;
  if (!look->boolean(0, 2)) return data;
  Status status = conn.Transaction(
      [&](Connection& c) -> Status {
        data.reset();
        auto run = c.Exec(kRunForTake, {run_id}, "reading the epoch of run " + run_id);
        if (!run.ok()) return run.status();
        Status fenced = Fence(c, *run, run_id, held_epoch);
        if (!fenced.ok()) return fenced;
        auto found = c.Exec(kFindSignal, {run_id, name, node}, what);
        if (!found.ok()) return found.status();
        if (found->size() == 0) return Status::Ok();
        data = found->str(0, 1);
        if (!found->boolean(0, 2)) return Status::Ok();  // this node took it before
        auto taken = c.Exec(kTakeSignal, {found->str(0, 0), node, Num(now)}, what);
        if (!taken.ok()) return taken.status();
        if (taken->affected() != 1) {
          // Cannot happen while the run's row is locked; refuse rather than
          // hand one signal to two nodes.
          return Status::Error(ErrorKind::kTransient,
                               c.name() + ": " + what + ": the signal was taken meanwhile");
        }
        return Status::Ok();
      },
      what);
  if (!status.ok()) return status;
  return data;
}

Result<CancelOutcome> CancelRun(Connection& conn, const std::string& run_id, double now,
                                const std::function<bool(const Owner&, double)>& owner_alive) {
  CancelOutcome outcome = CancelOutcome::kCancelled;
  Status status = conn.Transaction(
      [&](Connection& c) -> Status {
        outcome = CancelOutcome::kCancelled;
        auto rows = c.Exec(
            std::string("SELECT ") + kRunColumnsNoScript + " FROM runs WHERE id = $1 FOR UPDATE",
            {run_id}, "reading run " + run_id);
        if (!rows.ok()) return rows.status();
        if (rows->size() == 0) return NoRun(c, run_id);
        RunRecord run;
        RunFromRow(*rows, 0, &run);
        if (run.status == RunStatus::kCancelled) {
          return Status::Error(ErrorKind::kPermanent, "run " + run_id + " was already cancelled");
        }
        if (Finished(run.status)) {
          return Status::Error(ErrorKind::kPermanent, "run " + run_id + " already " +
                                                          std::string(RunStatusName(run.status)) +
                                                          "; nothing to cancel");
        }
        // A distributed run (its nodes queued for workers) has no owner
        // running it to ask: it is cancelled here, its queue emptied, and
        // each worker stops the nodes whose claims went (at its next sweep).
        auto queued = c.Exec(kEndQueue, {run_id}, "ending the claims of run " + run_id);
        if (!queued.ok()) return queued.status();
        const bool distributed = queued->int64(0, 0) > 0;
        if (!distributed && run.status == RunStatus::kRunning &&
            owner_alive(run.owner, now - run.heartbeat)) {
          outcome = CancelOutcome::kRequested;
          auto asked =
              c.Exec(kRequestCancel, {run_id, Num(now)}, "asking run " + run_id + " to cancel");
          return asked.ok() ? Status::Ok() : asked.status();
        }
        auto cancelled =
            c.Pipeline({{kCancelRun, {run_id, Num(now)}}, {kCancelNodes, {run_id, Num(now)}}},
                       "cancelling run " + run_id);
        if (!cancelled.ok()) return cancelled.status();
        std::vector<EventRecord> events(1);
        events[0].run_id = run_id;
        events[0].ts = now;
        events[0].kind = "run_cancelled";
        events[0].data_json = "{\"was\":\"" + std::string(RunStatusName(run.status)) + "\"}";
        return InsertEvents(c, &events);
      },
      "cancelling run " + run_id);
  if (!status.ok()) return status;
  return outcome;
}

Result<bool> CancelRequested(Connection& conn, const std::string& run_id) {
  auto rows = conn.Exec(kCancelState, {run_id}, "reading run " + run_id);
  if (!rows.ok()) return rows.status();
  if (rows->size() == 0) return false;
  return rows->real(0, 1) > 0 || StatusOf(*rows, 0) == RunStatus::kCancelled;
}

}  // namespace keel::pg
