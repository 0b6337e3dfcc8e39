#include "store/postgres/pg_escalations.h"

#include <functional>

#include "store/postgres/pg_frontier_step.h"
#include "store/postgres/pg_row_arrays.h"
#include "store/postgres/pg_rows.h"

namespace keel::pg {
namespace {

constexpr char kLastNumber[] = "SELECT coalesce(max(number), 0) FROM escalations WHERE run_id = $1";
constexpr char kDue[] =
    "INSERT INTO escalations (run_id, number, workflow, error, failure_json) "
    "VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING";
// An open row whose worker is alive and within its lease is skipped; the
// others are claimed, oldest due first.
constexpr char kClaim[] =
    "WITH c AS (SELECT e.run_id, e.number FROM escalations e WHERE e.state <> 'done' AND "
    "  (e.state = 'due' OR NOT EXISTS (SELECT 1 FROM workers w WHERE w.id = e.worker_id AND "
    "   w.heartbeat >= clock_timestamp() - make_interval(secs => w.lease_s))) "
    "  ORDER BY e.due_at LIMIT 1 FOR UPDATE OF e SKIP LOCKED), "
    "u AS (UPDATE escalations e SET state = 'claimed', attempt = e.attempt + 1, worker_id = $1, "
    "      claimed_at = clock_timestamp() FROM c WHERE e.run_id = c.run_id AND "
    "      e.number = c.number "
    "      RETURNING e.run_id, e.number, e.attempt, e.workflow, e.error, e.failure_json), "
    "l AS (INSERT INTO claim_log (run_id, node, attempt, worker_id, action) "
    "      SELECT run_id, 'on_failure#' || number, attempt, $1, 'claim' FROM u) "
    "SELECT run_id, number, attempt, workflow, error, failure_json FROM u";
// Locks the run's row before the escalation's, the order of every writer
// of a run's rows.
constexpr char kLockRun[] = "SELECT status FROM runs WHERE id = $1 FOR UPDATE";
constexpr char kLockEscalation[] =
    "SELECT state = 'claimed' AND attempt = $3 AND worker_id = $4, started_at > 0 "
    "FROM escalations WHERE run_id = $1 AND number = $2 FOR UPDATE";
constexpr char kMarkStarted[] =
    "UPDATE escalations SET started_at = $3 WHERE run_id = $1 AND number = $2";
constexpr char kMarkDone[] =
    "UPDATE escalations SET state = 'done' WHERE run_id = $1 AND number = $2";
constexpr char kHandBack[] =
    "UPDATE escalations SET state = 'due', due_at = clock_timestamp() WHERE run_id = $1 AND "
    "number = $2 AND state = 'claimed' AND attempt = $3 AND worker_id = $4";
constexpr char kLog[] =
    "INSERT INTO claim_log (run_id, node, attempt, worker_id, action) VALUES ($1, $2, $3, $4, $5)";
constexpr char kCurrent[] =
    "SELECT run_id, number, attempt FROM escalations WHERE worker_id = $1 AND state = 'claimed'";
constexpr char kOpen[] =
    "SELECT EXISTS (SELECT 1 FROM escalations WHERE run_id = $1 AND state <> 'done')";

// claim_log's line for `action` on escalation `claim` by `worker`.
Statement LogLine(const EscalationClaim& claim, const std::string& worker, const char* action) {
  return {kLog,
          {claim.run_id, "on_failure#" + std::to_string(claim.number), Num(claim.attempt), worker,
           std::string(action)}};
}

std::string Name(const EscalationClaim& claim) {
  return "escalation " + std::to_string(claim.number) + " of run " + claim.run_id;
}

}  // namespace

Statement LastEscalationRead(const std::string& run_id) { return {kLastNumber, {run_id}}; }

Statement EscalationDue(const std::string& run_id, int number, const std::string& workflow,
                        const std::string& error, const std::string& failure_json) {
  return {kDue, {run_id, Num(int64_t{number}), workflow, error, failure_json}};
}

Result<std::optional<EscalationClaim>> ClaimEscalation(Connection& conn,
                                                       const std::string& worker) {
  auto rows = conn.Exec(kClaim, {worker}, "claiming an escalation");
  if (!rows.ok()) return rows.status();
  if (rows->size() == 0) return std::optional<EscalationClaim>();
  EscalationClaim claim;
  claim.run_id = rows->str(0, 0);
  claim.number = static_cast<int>(rows->int64(0, 1));
  claim.attempt = rows->int64(0, 2);
  claim.workflow = rows->str(0, 3);
  claim.error = rows->str(0, 4);
  claim.failure_json = rows->str(0, 5);
  return std::optional<EscalationClaim>(std::move(claim));
}

namespace {

// Runs `write` in one transaction that locks run `claim.run_id`'s row and
// the escalation's, when `claim` by `worker` is current; *current says
// whether it was, *started whether the escalation was started before.
Status Fenced(Connection& conn, const EscalationClaim& claim, const std::string& worker,
              const std::string& what, bool* current,
              const std::function<Status(Connection&, bool started)>& write) {
  return conn.Transaction(
      [&](Connection& c) -> Status {
        auto locked =
            c.Pipeline({{kLockRun, {claim.run_id}},
                        {kLockEscalation,
                         {claim.run_id, Num(int64_t{claim.number}), Num(claim.attempt), worker}}},
                       what);
        if (!locked.ok()) return locked.status();
        const Rows& row = (*locked)[1];
        *current = (*locked)[0].size() == 1 && row.size() == 1 && row.boolean(0, 0);
        if (!*current) return Status::Ok();
        return write(c, row.boolean(0, 1));
      },
      what);
}

}  // namespace

Result<bool> StartEscalation(Connection& conn, const EscalationClaim& claim,
                             const std::string& worker, const EventRecord& started) {
  bool current = false;
  Status status =
      Fenced(conn, claim, worker, "starting " + Name(claim), &current,
             [&](Connection& c, bool already) -> Status {
               if (already) return Status::Ok();
               auto marked =
                   c.Exec(kMarkStarted, {claim.run_id, Num(int64_t{claim.number}), Num(started.ts)},
                          "starting " + Name(claim));
               if (!marked.ok()) return marked.status();
               std::vector<EventRecord> events{started};
               return InsertEvents(c, &events);
             });
  if (!status.ok()) return status;
  return current;
}

Result<bool> FinishEscalation(Connection& conn, const EscalationClaim& claim,
                              const std::string& worker, const std::vector<NodeRecord>& records,
                              const std::vector<EventRecord>& events) {
  bool current = false;
  const std::string what = "recording " + Name(claim);
  Status status = Fenced(conn, claim, worker, what, &current, [&](Connection& c, bool) -> Status {
    std::vector<Statement> writes;
    if (!records.empty()) {
      NodeRows rows;
      for (const NodeRecord& rec : records) rows.Add(rec, std::nullopt);
      writes.push_back(rows.ToStatement());
    }
    writes.push_back({kMarkDone, {claim.run_id, Num(int64_t{claim.number})}});
    writes.push_back(LogLine(claim, worker, "commit"));
    auto written = c.Pipeline(writes, what);
    if (!written.ok()) return written.status();
    std::vector<EventRecord> numbered = events;  // a retried transaction numbers them again
    return InsertEvents(c, &numbered);
  });
  if (!status.ok()) return status;
  if (!current) {
    auto logged = conn.Pipeline({LogLine(claim, worker, "superseded")}, what);
    if (!logged.ok()) return logged.status();
  }
  return current;
}

Status HandBackEscalation(Connection& conn, const std::string& worker,
                          const EscalationClaim& claim) {
  return conn.Transaction(
      [&](Connection& c) -> Status {
        auto back = c.Exec(kHandBack,
                           {claim.run_id, Num(int64_t{claim.number}), Num(claim.attempt), worker},
                           "handing back an escalation");
        if (!back.ok()) return back.status();
        if (back->affected() == 0) return Status::Ok();
        auto logged = c.Pipeline(
            {LogLine(claim, worker, "handback"), {std::string("NOTIFY ") + kReadyChannel, {}}},
            "handing back an escalation");
        return logged.ok() ? Status::Ok() : logged.status();
      },
      "handing back escalation " + std::to_string(claim.number) + " of run " + claim.run_id);
}

Result<std::vector<EscalationClaim>> CurrentEscalations(Connection& conn,
                                                        const std::string& worker) {
  auto rows = conn.Exec(kCurrent, {worker}, "reading the escalations of worker " + worker);
  if (!rows.ok()) return rows.status();
  std::vector<EscalationClaim> out(static_cast<size_t>(rows->size()));
  for (int i = 0; i < rows->size(); ++i) {
    EscalationClaim& claim = out[static_cast<size_t>(i)];
    claim.run_id = rows->str(i, 0);
    claim.number = static_cast<int>(rows->int64(i, 1));
    claim.attempt = rows->int64(i, 2);
  }
  return out;
}

Result<bool> EscalationOpen(Connection& conn, const std::string& run_id) {
  auto rows = conn.Exec(kOpen, {run_id}, "reading the escalations of run " + run_id);
  if (!rows.ok()) return rows.status();
  return rows->boolean(0, 0);
}

}  // namespace keel::pg
