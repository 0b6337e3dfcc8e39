#include "store/postgres/pg_frontier_step.h"

#include "engine/escalation.h"
#include "engine/event_data.h"
#include "store/postgres/pg_escalations.h"
#include "store/postgres/pg_row_arrays.h"
#include "store/postgres/pg_rows.h"

namespace keel::pg {
namespace {

// What the frontier needs of the run's own nodes (names never hold '['
// or '/', which inner records' do): no outputs, no map items.
constexpr char kOwnNodes[] =
    "SELECT node, status, error_kind, error_message, attempts FROM nodes WHERE run_id = $1 AND "
    "strpos(node, '[') = 0 AND strpos(node, '/') = 0 ORDER BY ord";
constexpr char kLaunched[] = "SELECT node FROM node_queue WHERE run_id = $1 AND state <> 'done'";

// Ends the claims of nodes the frontier cancelled (a worker running one
// sees its claim gone and stops it) and logs each.
constexpr char kEndClaims[] =
    "WITH e AS (UPDATE node_queue SET state = 'done' WHERE run_id = $1 AND "
    "node = ANY($2::text[]) AND state <> 'done' RETURNING node, attempt, worker_id) "
    "INSERT INTO claim_log (run_id, node, attempt, worker_id, action) "
    "SELECT $1, node, attempt, coalesce(worker_id, ''), 'cancel' FROM e";
// The last attempt claim_log holds for node `n` of run $1 (0 for none).
// Every queue row made, ready or claimed, goes on from it, so no two claims
// of a node share an attempt number however often its row was emptied
// (a settled run, a resume, a rerun) and made again.
#define KEEL_LAST_ATTEMPT \
  "coalesce((SELECT max(l.attempt) FROM claim_log l WHERE l.run_id = $1 AND l.node = n), 0)"
// A done row (a woken wait of a running run) is made ready again, its
// attempt kept.
constexpr char kQueueReady[] =
    "INSERT INTO node_queue (run_id, node, attempt) SELECT $1, n, " KEEL_LAST_ATTEMPT
    " FROM unnest($2::text[]) AS n ON CONFLICT (run_id, node) DO UPDATE SET state = 'ready', "
    "worker_id = '', ready_at = clock_timestamp() WHERE node_queue.state = 'done'";
// Answers the claims made: (node, attempt) rows.
constexpr char kQueueClaimed[] =
    "WITH i AS (INSERT INTO node_queue (run_id, node, state, attempt, worker_id, claimed_at) "
    "SELECT $1, n, 'claimed', " KEEL_LAST_ATTEMPT " + 1, $3, clock_timestamp() "
    "FROM unnest($2::text[]) AS n ON CONFLICT DO NOTHING RETURNING node, attempt) "
    "INSERT INTO claim_log (run_id, node, attempt, worker_id, action) "
    "SELECT $1, node, attempt, $3, 'claim' FROM i RETURNING node, attempt";
#undef KEEL_LAST_ATTEMPT
constexpr char kFinishRun[] =
    "UPDATE runs SET status = $2, error = $3, finished_at = $4, updated_at = $5 WHERE id = $1";
constexpr char kClearQueue[] = "DELETE FROM node_queue WHERE run_id = $1";

void Finish(const std::string& run_id, RunStatus status, const std::string& error, double now,
            FrontierStep* step) {
  step->settled = true;
  step->status = status;
  bool finished = status != RunStatus::kWaiting;
  step->writes.push_back({kFinishRun,
                          {run_id, std::string(RunStatusName(status)), error,
                           Num(finished ? now : 0.0), Num(now)}});
  step->writes.push_back({kClearQueue, {run_id}});
  EventData data;
  data.Add("status", RunStatusName(status));
  if (!error.empty()) data.Add("error", error);
  step->events.push_back({run_id, 0, now, "", "run_finished", data.Done()});
}

}  // namespace

Statement QueueReady(const std::string& run_id, const std::vector<std::string>& nodes) {
  return {kQueueReady, {run_id, ArrayLiteral(nodes)}};
}

std::vector<NodeClaim> ClaimsFromRows(const std::string& run_id, const Rows& rows) {
  std::vector<NodeClaim> out;
  for (int i = 0; i < rows.size(); ++i) out.push_back({run_id, rows.str(i, 0), rows.int64(i, 1)});
  return out;
}

std::vector<Statement> FrontierReads(const std::string& run_id) {
  return {{kOwnNodes, {run_id}}, {kLaunched, {run_id}}, LastEscalationRead(run_id)};
}

FrontierInputs FrontierFromRows(const Rows& nodes, const Rows& queue, const Rows& escalations) {
  FrontierInputs in;
  in.records.resize(static_cast<size_t>(nodes.size()));
  for (int i = 0; i < nodes.size(); ++i) {
    NodeRecord& n = in.records[static_cast<size_t>(i)];
    n.node = nodes.str(i, 0);
    if (!ParseNodeStatus(nodes.text(i, 1), &n.status)) n.status = NodeStatus::kFailed;
    if (!ParseErrorKind(nodes.text(i, 2), &n.error_kind)) n.error_kind = ErrorKind::kError;
    n.error_message = nodes.str(i, 3);
    n.attempts = static_cast<int>(nodes.int64(i, 4));
  }
  for (int i = 0; i < queue.size(); ++i) in.launched.insert(queue.str(i, 0));
  if (escalations.size() == 1) in.escalations = static_cast<int>(escalations.int64(0, 0));
  return in;
}

Result<FrontierInputs> ReadFrontierInputs(Connection& conn, const std::string& run_id) {
  auto rows = conn.Pipeline(FrontierReads(run_id), "reading the nodes of run " + run_id);
  if (!rows.ok()) return rows.status();
  return FrontierFromRows((*rows)[0], (*rows)[1], (*rows)[2]);
}

FrontierStep PlanFrontierStep(const WorkflowSpec& workflow, const std::string& run_id,
                              const FrontierInputs& inputs, double now,
                              const std::string& worker, int claim_children) {
  FrontierStep step;
  Frontier f = ComputeFrontier(workflow, inputs.records, inputs.launched);
  if (!f.cancel.empty()) {
    NodeRows records;
    std::vector<std::string> names;
    for (const FrontierCancel& c : f.cancel) {
      NodeRecord rec;
      rec.run_id = run_id;
      rec.node = c.node;
      rec.status = NodeStatus::kCancelled;
      rec.error_kind = ErrorKind::kCancelled;
      rec.error_message = c.reason;
      rec.finished_at = now;
      records.Add(rec, std::nullopt);
      names.push_back(c.node);
      step.events.push_back({run_id, 0, now, c.node, "node_cancelled",
                             EventData()
                                 .Add("seconds", 0.0)
                                 .Add("attempts", 0)
                                 .Add("kind", "cancelled")
                                 .Add("message", c.reason)
                                 .Done()});
    }
    step.writes.push_back(records.ToStatement());
    step.writes.push_back({kEndClaims, {run_id, ArrayLiteral(names)}});
  }
  std::vector<std::string> mine, others;
  for (const std::string& node : f.ready) {
    if (static_cast<int>(mine.size()) < claim_children && !worker.empty()) {
      mine.push_back(node);
    } else {
      others.push_back(node);
    }
  }
  if (!mine.empty()) {
    step.claim_write = static_cast<int>(step.writes.size());
    step.writes.push_back({kQueueClaimed, {run_id, ArrayLiteral(mine), worker}});
  }
  if (!others.empty()) {
    step.writes.push_back(QueueReady(run_id, others));
    step.notify = true;
  }
  if (f.settled && f.status == RunStatus::kFailed && !workflow.on_failure.empty()) {
    // ctx.failure as the records say now: a resume may change them before
    // a worker takes the escalation up.
    const int number = inputs.escalations + 1;
    RunOutcome outcome = RecordedOutcome(workflow, inputs.records, f.error, f.failed_node);
    step.writes.push_back(EscalationDue(run_id, number, workflow.on_failure, f.error,
                                        *EscalationFailure(run_id, workflow, outcome, number)));
    step.escalation_due = true;
    step.notify = true;
  }
  if (f.settled) Finish(run_id, f.status, f.error, now, &step);
  return step;
}

FrontierStep PlanFailedRun(const std::string& run_id, const std::string& error, double now) {
  FrontierStep step;
  Finish(run_id, RunStatus::kFailed, error, now, &step);
  return step;
}

Status ApplyFrontierStep(Connection& conn, FrontierStep* step) {
  if (!step->writes.empty()) {
    auto written = conn.Pipeline(step->writes, "advancing a distributed run");
    if (!written.ok()) return written.status();
  }
  Status events = InsertEvents(conn, &step->events);
  if (!events.ok()) return events;
  if (!step->notify) return Status::Ok();
  auto notified = conn.Exec(std::string("NOTIFY ") + kReadyChannel, {}, "notifying workers");
  return notified.ok() ? Status::Ok() : notified.status();
}

}  // namespace keel::pg
