#include "store/postgres/pg_handoff.h"

#include "store/postgres/pg_rows.h"
#include "store/postgres/pg_wait_wakes.h"

namespace keel::pg {
namespace {

// The listing columns (script_text left out), then the auto-resume count and
// whether the limit was noted, through the partial indexes on events.
std::string CandidateColumns() {
  return std::string("SELECT ") + kRunColumnsNoScript +
         ", (SELECT count(*) FROM events e WHERE e.run_id = runs.id AND e.kind = "
         "'auto_resumed'), EXISTS (SELECT 1 FROM events e WHERE e.run_id = runs.id AND e.kind = "
         "'auto_resume_limit') FROM runs ";
}

// A waiting run is due when one of its waiting nodes may go on (kWaitDue).
// Distributed runs are left to the workers, which wake their waits
// (pg_wait_wakes.h). $1 = now, $2 = limit.
std::string DueWaits() {
  return "WHERE status = 'waiting' AND NOT distributed AND id IN (" + DueWaitRuns() +
         ") ORDER BY created_at, id LIMIT $2";
}
constexpr char kQueued[] = "WHERE status = 'queued' ORDER BY created_at, id LIMIT $1";
// Distributed runs are carried by their workers, which re-queue a lost
// worker's nodes; their submitting process is not their owner.
constexpr char kStopped[] =
    "WHERE status IN ('interrupted', 'running') AND NOT distributed ORDER BY GREATEST(heartbeat, updated_at), id "
    "LIMIT $1";

// Whether a signal run $1 may take has arrived for one of its waiting nodes:
// tells "signal" from "timer".
std::string SignalArrived() {
  return std::string("SELECT EXISTS (SELECT 1 FROM nodes n WHERE n.run_id = $1 AND "
                     "n.status = 'waiting' AND ") +
         kWaitSignalled + ")";
}

constexpr char kRunForHandoff[] =
    "SELECT status, epoch, owner_pid, owner_host, owner_start, heartbeat, cancel_requested "
    "FROM runs WHERE id = $1 FOR UPDATE";
constexpr char kHandOff[] =
    "UPDATE runs SET owner_pid = $2, owner_host = $3, owner_start = $4, heartbeat = $5, "
    "epoch = epoch + 1 WHERE id = $1 AND epoch = $6";
constexpr char kRelease[] =
    "UPDATE runs SET owner_pid = $2, owner_host = $3, owner_start = 0, epoch = epoch + 1, "
    "status = CASE WHEN $5::text = '' THEN status ELSE 'failed' END, "
    "error = CASE WHEN $5::text = '' THEN error ELSE $5::text END, "
    "finished_at = CASE WHEN $5::text = '' THEN finished_at ELSE $4::double precision END, "
    "updated_at = $4::double precision WHERE id = $1 AND epoch = $6";
constexpr char kLockRun[] = "SELECT 1 FROM runs WHERE id = $1 FOR UPDATE";
constexpr char kHasEventKind[] = "SELECT 1 FROM events WHERE run_id = $1 AND kind = $2 LIMIT 1";

// `limit` as a LIMIT parameter: NULL (none) when negative.
std::optional<std::string> Limit(int limit) {
  if (limit < 0) return std::nullopt;
  return Num(limit);
}

Status AppendOne(Connection& conn, const EventRecord& event) {
  std::vector<EventRecord> events{event};
  return InsertEvents(conn, &events);
}

}  // namespace

Result<std::vector<Store::StartCandidate>> ListRunsToStart(Connection& conn, double now,
                                                           bool stopped, int limit) {
  std::vector<Store::StartCandidate> found;
  const std::string head = CandidateColumns();
  constexpr int kColumns = 22;  // of kRunColumnsNoScript
  auto read = [&](const std::string& sql, const Params& params, const char* reason) -> Status {
    auto rows = conn.Exec(sql, params, "listing runs to start");
    if (!rows.ok()) return rows.status();
    for (int i = 0; i < rows->size(); ++i) {
      Store::StartCandidate& c = found.emplace_back();
      RunFromRow(*rows, i, &c.run);
      c.reason = reason;
      c.auto_resumes = static_cast<int>(rows->int64(i, kColumns));
      c.limit_noted = rows->boolean(i, kColumns + 1);
    }
    return Status::Ok();
  };
  Status s = read(head + kQueued, {Limit(limit)}, "queued");
  size_t waits_from = found.size();
  if (s.ok()) s = read(head + DueWaits(), {Num(now), Limit(limit)}, "timer");
  for (size_t i = waits_from; s.ok() && i < found.size(); ++i) {
    auto arrived = conn.Exec(SignalArrived(), {found[i].run.id}, "reading signals");
    if (!arrived.ok()) return arrived.status();
    if (arrived->boolean(0, 0)) found[i].reason = "signal";
  }
  if (s.ok() && stopped) {
    size_t stopped_from = found.size();
    s = read(head + kStopped, {Limit(limit)}, "running");
    for (size_t i = stopped_from; i < found.size(); ++i) {
      if (found[i].run.status == RunStatus::kInterrupted) found[i].reason = "interrupted";
    }
  }
  if (!s.ok()) return s;
  return found;
}

Result<int64_t> HandOffRun(Connection& conn, const std::string& run_id, int64_t expected_epoch,
                           const Owner& to, double now, const EventRecord& event,
                           const std::function<bool(const Owner&, double)>& owner_alive) {
  int64_t epoch = 0;
  Status status = conn.Transaction(
      [&](Connection& c) -> Status {
        auto run = c.Exec(kRunForHandoff, {run_id}, "reading run " + run_id);
        if (!run.ok()) return run.status();
        if (run->size() == 0) {
          return Status::Error(ErrorKind::kPermanent, "no run '" + run_id + "' in " + c.name());
        }
        RunStatus run_status = RunStatus::kFailed;
        ParseRunStatus(run->text(0, 0), &run_status);
        epoch = run->int64(0, 1);
        Owner owner{run->int64(0, 2), run->str(0, 3), run->int64(0, 4)};
        double heartbeat = run->real(0, 5);
        double cancel_requested = run->real(0, 6);
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
        auto handed = c.Exec(
            kHandOff,
            {run_id, Num(to.pid), to.host, Num(to.start_ticks), Num(now), Num(expected_epoch)},
            "handing run " + run_id + " over");
        if (!handed.ok()) return handed.status();
        if (handed->affected() != 1) {
          return Status::Error(ErrorKind::kPermanent,
                               "run " + run_id + " changed while handed over");
        }
        if (event.kind.empty()) return Status::Ok();
        return AppendOne(c, event);
      },
      "handing run " + run_id + " over");
  if (!status.ok()) return status;
  return epoch + 1;
}

Status ReleaseRun(Connection& conn, const std::string& run_id, int64_t epoch, const Owner& none,
                  double now, const std::string& error) {
  return conn.Transaction(
      [&](Connection& c) -> Status {
        auto released =
            c.Exec(kRelease, {run_id, Num(none.pid), none.host, Num(now), error, Num(epoch)},
                   "giving run " + run_id + " back");
        if (!released.ok()) return released.status();
        if (released->affected() != 1) {
          return Status::Error(
              ErrorKind::kPermanent,
              "run " + run_id + " was claimed or changed since it was handed over");
        }
        return Status::Ok();
      },
      "giving run " + run_id + " back");
}

Status AppendEventOnce(Connection& conn, const EventRecord& event) {
  return conn.Transaction(
      [&](Connection& c) -> Status {
        // The run's row lock orders two callers: the second sees the first's event.
        auto locked = c.Exec(kLockRun, {event.run_id}, "reading run " + event.run_id);
        if (!locked.ok()) return locked.status();
        if (locked->size() == 0) {
          return Status::Error(ErrorKind::kPermanent, "cannot record " + event.kind + " of run " +
                                                          event.run_id + ": no such run in " +
                                                          c.name());
        }
        auto has = c.Exec(kHasEventKind, {event.run_id, event.kind},
                          "reading the events of run " + event.run_id);
        if (!has.ok()) return has.status();
        if (has->size() > 0) return Status::Ok();
        return AppendOne(c, event);
      },
      "recording " + event.kind + " of run " + event.run_id);
}

}  // namespace keel::pg
