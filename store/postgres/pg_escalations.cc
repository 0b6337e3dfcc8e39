#include "store/postgres/pg_escalations.h"

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
constexpr char kFence[] = "SELECT keel_escalation_fence($1, $2, $3, $4, $5)";
constexpr char kSuperseded[] = "KL001";  // keel_escalation_fence's refusal
// Records escalation_started (its seq taken from the run's row, locked by
// the fence) unless an earlier claim did.
constexpr char kStart[] =
    "WITH s AS (UPDATE escalations SET started_at = $3 WHERE run_id = $1 AND number = $2 AND "
    "started_at = 0 RETURNING run_id), "
    "q AS (UPDATE runs r SET last_seq = r.last_seq + 1 FROM s WHERE r.id = s.run_id "
    "RETURNING r.last_seq) "
    "INSERT INTO events (cursor, run_id, seq, ts, node, kind, data_json) "
    "SELECT nextval('events_cursor'), $1, q.last_seq, $3, '', 'escalation_started', $4 FROM q";
constexpr char kCommitted[] =
    "SELECT EXISTS (SELECT 1 FROM claim_log WHERE run_id = $1 AND node = $2 AND attempt = $3 "
    "AND worker_id = $4 AND action = 'commit')";
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

// The node name claim_log gives escalation `claim`: "on_failure#N".
std::string LogNode(const EscalationClaim& claim) {
  return "on_failure#" + std::to_string(claim.number);
}

// claim_log's line for `action` on escalation `claim` by `worker`.
Statement LogLine(const EscalationClaim& claim, const std::string& worker, const char* action) {
  return {kLog, {claim.run_id, LogNode(claim), Num(claim.attempt), worker, std::string(action)}};
}

std::string Name(const EscalationClaim& claim) {
  return "escalation " + std::to_string(claim.number) + " of run " + claim.run_id;
}

Statement Fence(const EscalationClaim& claim, const std::string& worker, size_t events) {
  return {kFence,
          {claim.run_id, Num(int64_t{claim.number}), Num(claim.attempt), worker,
           Num(static_cast<int64_t>(events))}};
}

// Runs `pipeline` (BEGIN, a Fence, writes, COMMIT): one round trip, so the
// locks the fence takes are held only while the server runs it. Returns
// false when the fence refused it (the claim is not current; nothing
// written). A failure leaves no transaction open.
Result<bool> RunFenced(Connection& conn, const std::vector<Statement>& pipeline,
                       const std::string& what) {
  auto rows = conn.Pipeline(pipeline, what);
  if (rows.ok()) return true;
  if (conn.InTransaction()) (void)conn.ExecScript("ROLLBACK", what);
  if (SqlStateOf(rows.status()) == kSuperseded) return false;
  return rows.status();
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

Result<bool> StartEscalation(Connection& conn, const EscalationClaim& claim,
                             const std::string& worker, const EventRecord& started) {
  return RunFenced(
      conn,
      {{"BEGIN", {}},
       Fence(claim, worker, 0),
       {"SELECT pg_advisory_xact_lock($1)", {Num(kEventCursorLock)}},
       {kStart, {claim.run_id, Num(int64_t{claim.number}), Num(started.ts), started.data_json}},
       {"COMMIT", {}}},
      "starting " + Name(claim));
}

Result<bool> FinishEscalation(Connection& conn, const EscalationClaim& claim,
                              const std::string& worker, const std::vector<NodeRecord>& records,
                              const std::vector<EventRecord>& events) {
  const std::string what = "recording " + Name(claim);
  EventRows rows;
  for (const EventRecord& e : events) rows.Add(e);
  std::vector<Statement> pipeline{{"BEGIN", {}}, Fence(claim, worker, rows.size())};
  if (!records.empty()) {
    NodeRows nodes;
    for (const NodeRecord& rec : records) nodes.Add(rec, std::nullopt);
    pipeline.push_back(nodes.ToStatement());
  }
  pipeline.push_back({kMarkDone, {claim.run_id, Num(int64_t{claim.number})}});
  pipeline.push_back(LogLine(claim, worker, "commit"));
  if (!rows.empty()) {
    pipeline.push_back({"SELECT pg_advisory_xact_lock($1)", {Num(kEventCursorLock)}});
    pipeline.push_back(rows.ToStatementTakingSeqs());
  }
  pipeline.push_back({"COMMIT", {}});
  auto written = RunFenced(conn, pipeline, what);
  if (!written.ok() || *written) return written;
  // Refused: already done by this very claim (a retry after an answer was
  // lost), or taken over by another.
  auto mine =
      conn.Exec(kCommitted, {claim.run_id, LogNode(claim), Num(claim.attempt), worker}, what);
  if (!mine.ok()) return mine.status();
  if (mine->boolean(0, 0)) return true;
  auto logged = conn.Pipeline({LogLine(claim, worker, "superseded")}, what);
  if (!logged.ok()) return logged.status();
  return false;
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
