#include "store/postgres/pg_wait_wakes.h"

#include "engine/event_data.h"
#include "store/postgres/pg_frontier_step.h"
#include "store/postgres/pg_row_arrays.h"
#include "store/postgres/pg_rows.h"

namespace keel::pg {
namespace {

// Distributed runs, running or parked, with a waiting node that may go on.
std::string DueRuns() {
  return "SELECT d.run_id FROM (" + DueWaitRuns() +
         ") d JOIN runs r ON r.id = d.run_id WHERE r.distributed AND r.status IN ('running', "
         "'waiting') LIMIT $2";
}

// Run $2's waiting nodes that may go on, and whether a signal woke each.
std::string DueNodes() {
  return std::string("SELECT n.node, ") + kWaitSignalled +
         " FROM nodes n WHERE n.run_id = $2 AND n.status = 'waiting' AND " + kWaitDue +
         " ORDER BY n.ord";
}

constexpr char kLockRun[] = "SELECT status, distributed FROM runs WHERE id = $1 FOR UPDATE";
constexpr char kDropWaiting[] =
    "DELETE FROM nodes WHERE run_id = $1 AND node = ANY($2::text[]) AND status = 'waiting'";
constexpr char kRunning[] =
    "UPDATE runs SET status = 'running', updated_at = $2 WHERE id = $1 AND status = 'waiting'";

// Wakes run `run_id`'s waits that may go on, under its row lock.
Status WakeRun(Connection& conn, const std::string& run_id, double now,
               std::vector<WokenWait>* woken) {
  std::vector<WokenWait> mine;
  Status done = conn.Transaction(
      [&](Connection& c) -> Status {
        mine.clear();  // a transaction tried again starts afresh
        auto run = c.Exec(kLockRun, {run_id}, "locking run " + run_id);
        if (!run.ok()) return run.status();
        if (run->size() == 0 || !run->boolean(0, 1)) return Status::Ok();
        const std::string status = run->str(0, 0);
        if (status != "running" && status != "waiting") return Status::Ok();
        auto due = c.Exec(DueNodes(), {Num(now), run_id}, "reading the waits of run " + run_id);
        if (!due.ok()) return due.status();
        if (due->size() == 0) return Status::Ok();
        std::vector<std::string> names;
        std::vector<EventRecord> events;
        for (int i = 0; i < due->size(); ++i) {
          names.push_back(due->str(i, 0));
          std::string by = due->boolean(i, 1) ? "signal" : "timer";
          events.push_back(
              {run_id, 0, now, names.back(), "wait_woken", EventData().Add("by", by).Done()});
          mine.push_back({run_id, names.back(), by});
        }
        // A parked run's queue was emptied when it settled; a running one
        // keeps the wait's row, done.
        auto written = c.Pipeline({{kDropWaiting, {run_id, ArrayLiteral(names)}},
                                   QueueReady(run_id, names),
                                   {kRunning, {run_id, Num(now)}}},
                                  "waking the waits of run " + run_id);
        if (!written.ok()) return written.status();
        Status logged = InsertEvents(c, &events);
        if (logged.ok()) {
          auto notified =
              c.Exec(std::string("NOTIFY ") + kReadyChannel, {}, "notifying workers");
          if (!notified.ok()) logged = notified.status();
        }
        return logged;
      },
      "waking the waits of run " + run_id);
  if (done.ok()) woken->insert(woken->end(), mine.begin(), mine.end());
  return done;
}

}  // namespace

// Three ways in, each through its index: a due time that has come, a
// signal not taken yet, a signal the waiting node took before (its name
// compared only for those pairs, past the OFFSET 0 fence, so keel_json
// runs for them alone).
std::string DueWaitRuns() {
  return "SELECT n.run_id FROM nodes n WHERE n.status = 'waiting' AND "
         "keel_json_number(keel_json(n.output_json), 'due') BETWEEN 1e-9 AND $1 "
         "UNION SELECT n.run_id FROM signals s JOIN nodes n ON n.run_id = s.run_id AND "
         "n.status = 'waiting' AND keel_json(n.output_json) ->> 'signal' = s.name "
         "WHERE s.taken_by IS NULL "
         "UNION SELECT t.run_id FROM (SELECT n.run_id, n.output_json, s.name FROM nodes n "
         "JOIN signals s ON s.run_id = n.run_id AND s.taken_by = n.node "
         "WHERE n.status = 'waiting' OFFSET 0) t "
         "WHERE t.name = keel_json(t.output_json) ->> 'signal'";
}

Result<std::vector<WokenWait>> WakeWaits(Connection& conn, double now, int max_runs) {
  auto runs = conn.Exec(DueRuns(), {Num(now), Num(int64_t{max_runs})},
                        "looking for waits to wake");
  if (!runs.ok()) return runs.status();
  std::vector<WokenWait> woken;
  for (int i = 0; i < runs->size(); ++i) {
    Status s = WakeRun(conn, runs->str(i, 0), now, &woken);
    if (!s.ok()) return s;
  }
  return woken;
}

}  // namespace keel::pg
