#include "store/postgres/pg_node_queue.h"

#include "engine/event_data.h"
#include "engine/rerun.h"
#include "store/postgres/pg_row_arrays.h"
#include "store/postgres/pg_rows.h"

namespace keel::pg {
namespace {

Status Log(Connection& conn, const NodeClaim& claim, const std::string& worker,
           const char* action) {
  auto logged = conn.Exec(
      "INSERT INTO claim_log (run_id, node, attempt, worker_id, action) VALUES ($1, $2, $3, $4, $5)",
      {claim.run_id, claim.node, Num(claim.attempt), worker, std::string(action)},
      "logging a claim");
  return logged.ok() ? Status::Ok() : logged.status();
}

// The script identity of a run's current version: its sha256 and its
// modules' sha256s, joined.
constexpr char kScriptKey[] =
    "SELECT v.script_sha256 || coalesce((SELECT string_agg(m.sha256, ',' ORDER BY m.seq) "
    "FROM script_modules m WHERE m.run_id = v.run_id AND m.version = v.version), '') "
    "FROM runs r JOIN script_versions v ON v.run_id = r.id AND v.version = r.script_version "
    "WHERE r.id = $1";

// Queues the nodes of run `run_id` the frontier makes ready (the run's row
// locked by the caller), recording those it cancels and finishing it when
// it is settled.
Result<FrontierStep> AdvanceRun(Connection& conn, const WorkflowSpec& workflow,
                                const std::string& run_id, double now) {
  auto inputs = ReadFrontierInputs(conn, run_id);
  if (!inputs.ok()) return inputs.status();
  FrontierStep step = PlanFrontierStep(workflow, run_id, *inputs, now, "", 0);
  Status applied = ApplyFrontierStep(conn, &step);
  if (!applied.ok()) return applied;
  return step;
}

// Drops the records of `rerun`'s nodes and those inside them, and their
// queue rows (run `run_id`'s row locked by the caller). Refused while any
// node of the run is claimed: a worker runs it.
Status ResetForRerun(Connection& c, const std::string& run_id, const Rerun& rerun) {
  const std::string list = ArrayLiteral(rerun.nodes);
  auto rows = c.Pipeline(
      {{"SELECT count(*) FROM node_queue WHERE run_id = $1 AND state = 'claimed'", {run_id}},
       {"DELETE FROM nodes WHERE run_id = $1 AND (node = ANY($2::text[]) OR (node ~ '[[/]' AND "
        "substring(node from '^[^[/]*') = ANY($2::text[])))",
        {run_id, list}},
       {"DELETE FROM node_queue WHERE run_id = $1 AND node = ANY($2::text[])", {run_id, list}}},
      "resetting the nodes of run " + run_id);
  if (!rows.ok()) return rows.status();
  if ((*rows)[0].int64(0, 0) > 0) {
    return Status::Error(ErrorKind::kPermanent,
                         "run " + run_id + " has nodes running on workers; wait for it to "
                                           "finish, or cancel it, before resuming it --from " +
                             rerun.from);
  }
  return Status::Ok();
}

}  // namespace

Status RegisterWorker(Connection& conn, const std::string& id, const Owner& process,
                      double lease_s) {
  auto done = conn.Exec(
      "INSERT INTO workers (id, host, pid, start_ticks, lease_s) VALUES ($1, $2, $3, $4, $5) "
      "ON CONFLICT (id) DO UPDATE SET heartbeat = clock_timestamp(), lease_s = excluded.lease_s",
      {id, process.host, Num(process.pid), Num(process.start_ticks), Num(lease_s)},
      "registering worker " + id);
  return done.ok() ? Status::Ok() : done.status();
}

Result<int64_t> ReapDeadWorkers(Connection& conn, const std::string& host,
                                const std::function<bool(const Owner&)>& alive) {
  auto rows = conn.Exec("SELECT id, pid, start_ticks FROM workers WHERE host = $1", {host},
                        "reading the workers of " + host);
  if (!rows.ok()) return rows.status();
  int64_t reaped = 0;
  for (int i = 0; i < rows->size(); ++i) {
    Owner owner{rows->int64(i, 1), host, rows->int64(i, 2)};
    if (alive(owner)) continue;
    auto gone = conn.Exec("DELETE FROM workers WHERE id = $1", {rows->str(i, 0)},
                          "removing a dead worker");
    if (!gone.ok()) return gone.status();
    reaped += gone->affected();
  }
  return reaped;
}

Status UnregisterWorker(Connection& conn, const std::string& id) {
  auto done = conn.Exec("DELETE FROM workers WHERE id = $1", {id}, "unregistering worker " + id);
  return done.ok() ? Status::Ok() : done.status();
}

Status WorkerHeartbeat(Connection& conn, const std::string& id) {
  auto done = conn.Exec("UPDATE workers SET heartbeat = clock_timestamp() WHERE id = $1", {id},
                        "heartbeat of worker " + id);
  if (!done.ok()) return done.status();
  if (done->affected() == 0) {
    return Status::Error(ErrorKind::kPermanent, "worker " + id + " is not registered");
  }
  return Status::Ok();
}

Statement ClaimReadyStatement(const std::string& worker, int n) {
  // The rows locked are updated by their ctid (the version locked): no
  // second look-up by key.
  return {"WITH c AS (SELECT ctid FROM node_queue WHERE state = 'ready' "
          "           ORDER BY ready_at LIMIT $2 FOR UPDATE SKIP LOCKED), "
          "u AS (UPDATE node_queue q SET state = 'claimed', attempt = q.attempt + 1, "
          "      worker_id = $1, claimed_at = clock_timestamp() FROM c WHERE q.ctid = c.ctid "
          "      RETURNING q.run_id, q.node, q.attempt), "
          "l AS (INSERT INTO claim_log (run_id, node, attempt, worker_id, action) "
          "      SELECT run_id, node, attempt, $1, 'claim' FROM u) "
          "SELECT run_id, node, attempt FROM u",
          {worker, Num(int64_t{n})}};
}

std::vector<NodeClaim> ReadyClaimsFromRows(const Rows& rows) {
  std::vector<NodeClaim> out;
  for (int i = 0; i < rows.size(); ++i) {
    out.push_back({rows.str(i, 0), rows.str(i, 1), rows.int64(i, 2)});
  }
  return out;
}

Result<std::vector<NodeClaim>> ClaimReady(Connection& conn, const std::string& worker, int n) {
  if (n <= 0) return std::vector<NodeClaim>{};
  Statement claim = ClaimReadyStatement(worker, n);
  auto rows = conn.Exec(claim.sql, claim.params, "claiming ready nodes");
  if (!rows.ok()) return rows.status();
  return ReadyClaimsFromRows(*rows);
}

Result<int64_t> RequeueExpired(Connection& conn) {
  auto rows = conn.Exec(
      "WITH u AS (UPDATE node_queue q SET state = 'ready', ready_at = clock_timestamp() "
      "  WHERE q.state = 'claimed' AND NOT EXISTS (SELECT 1 FROM workers w WHERE "
      "    w.id = q.worker_id AND w.heartbeat >= clock_timestamp() - make_interval(secs => "
      "    w.lease_s)) RETURNING q.run_id, q.node, q.attempt, q.worker_id), "
      "l AS (INSERT INTO claim_log (run_id, node, attempt, worker_id, action) "
      "      SELECT run_id, node, attempt, worker_id, 'requeue' FROM u) "
      "SELECT count(*) FROM u",
      {}, "re-queueing expired claims");
  if (!rows.ok()) return rows.status();
  int64_t n = rows->int64(0, 0);
  if (n > 0) {
    auto notified = conn.Exec(std::string("NOTIFY ") + kReadyChannel, {}, "notifying workers");
    if (!notified.ok()) return notified.status();
  }
  return n;
}

Status HandBack(Connection& conn, const std::string& worker,
                const std::vector<NodeClaim>& claims) {
  if (claims.empty()) return Status::Ok();
  return conn.Transaction(
      [&](Connection& c) -> Status {
        for (const NodeClaim& claim : claims) {
          auto back = c.Exec(
              "UPDATE node_queue SET state = 'ready', ready_at = clock_timestamp() "
              "WHERE run_id = $1 AND node = $2 AND state = 'claimed' AND attempt = $3 AND "
              "worker_id = $4",
              {claim.run_id, claim.node, Num(claim.attempt), worker}, "handing back a node");
          if (!back.ok()) return back.status();
          if (back->affected() == 0) continue;
          Status logged = Log(c, claim, worker, "handback");
          if (!logged.ok()) return logged;
        }
        auto notified = c.Exec(std::string("NOTIFY ") + kReadyChannel, {}, "notifying workers");
        return notified.ok() ? Status::Ok() : notified.status();
      },
      "handing back claimed nodes");
}

Status SubmitRun(Connection& conn, const RunRecord& run, const WorkflowSpec& workflow,
                 double now) {
  return conn.Transaction(
      [&](Connection& c) -> Status {
        Status inserted = InsertRun(c, run);
        if (!inserted.ok()) return inserted;
        auto marked = c.Exec("UPDATE runs SET distributed = true WHERE id = $1", {run.id},
                             "submitting run " + run.id);
        if (!marked.ok()) return marked.status();
        std::vector<EventRecord> started{
            {run.id, 0, now, "", "run_started",
             EventData().Add("workflow", run.workflow).Add("distributed", true).Done()}};
        Status logged = InsertEvents(c, &started);
        if (!logged.ok()) return logged;
        auto step = AdvanceRun(c, workflow, run.id, now);
        return step.ok() ? Status::Ok() : step.status();
      },
      "submitting run " + run.id);
}

Result<std::vector<std::string>> IdleRuns(Connection& conn) {
  auto rows = conn.Exec(
      "SELECT q.run_id FROM node_queue q JOIN runs r ON r.id = q.run_id AND "
      "r.status = 'running' GROUP BY q.run_id HAVING bool_and(q.state = 'done')",
      {}, "looking for idle distributed runs");
  if (!rows.ok()) return rows.status();
  std::vector<std::string> out;
  for (int i = 0; i < rows->size(); ++i) out.push_back(rows->str(i, 0));
  return out;
}

Result<FrontierStep> SettleIdleRun(Connection& conn, const WorkflowSpec& workflow,
                                   const std::string& run_id, double now) {
  FrontierStep step;
  Status status = conn.Transaction(
      [&](Connection& c) -> Status {
        step = FrontierStep();
        auto idle = c.Pipeline(
            {{"SELECT status FROM runs WHERE id = $1 FOR UPDATE", {run_id}},
             {"SELECT EXISTS (SELECT 1 FROM node_queue WHERE run_id = $1 AND state <> 'done')",
              {run_id}}},
            "locking run " + run_id);
        if (!idle.ok()) return idle.status();
        const Rows& run = (*idle)[0];
        if (run.size() == 0 || run.text(0, 0) != "running" || (*idle)[1].boolean(0, 0)) {
          return Status::Ok();
        }
        auto advanced = AdvanceRun(c, workflow, run_id, now);
        if (!advanced.ok()) return advanced.status();
        step = std::move(*advanced);
        return Status::Ok();
      },
      "settling run " + run_id);
  if (!status.ok()) return status;
  return step;
}

Result<bool> IsDistributed(Connection& conn, const std::string& run_id) {
  auto rows = conn.Exec("SELECT distributed FROM runs WHERE id = $1", {run_id},
                        "reading run " + run_id);
  if (!rows.ok()) return rows.status();
  return rows->size() == 1 && rows->boolean(0, 0);
}

Status ResumeRun(Connection& conn, const std::string& run_id, const WorkflowSpec& workflow,
                 double now, const Rerun* rerun) {
  return conn.Transaction(
      [&](Connection& c) -> Status {
        auto run = c.Exec("SELECT status FROM runs WHERE id = $1 FOR UPDATE", {run_id},
                          "locking run " + run_id);
        if (!run.ok()) return run.status();
        if (run->size() == 0) {
          return Status::Error(ErrorKind::kPermanent, "no run " + run_id + " in " + c.name());
        }
        std::string status = run->str(0, 0);
        if ((status == RunStatusName(RunStatus::kSucceeded) && rerun == nullptr) ||
            status == RunStatusName(RunStatus::kCancelled)) {
          return Status::Error(ErrorKind::kPermanent, "run " + run_id + " " + status +
                                                          "; there is nothing to resume");
        }
        std::vector<EventRecord> events;
        if (rerun != nullptr) {
          Status reset = ResetForRerun(c, run_id, *rerun);
          if (!reset.ok()) return reset;
          events.push_back({run_id, 0, now, "", kRerunEventKind,
                            RerunEventData(rerun->from, rerun->nodes)});
        }
        std::vector<std::string> names;
        for (const NodeSpec& n : workflow.nodes) names.push_back(n.name);
        // Own records that did not finish with an output run again; inner
        // records stay, for the nodes that run again to keep what they did.
        std::string list = ArrayLiteral(names);
        auto dropped = c.Exec(
            "WITH d AS (DELETE FROM nodes WHERE run_id = $1 AND node = ANY($2::text[]) AND "
            "status NOT IN ('succeeded', 'fallback', 'skipped') AND NOT EXISTS (SELECT 1 FROM "
            "node_queue q WHERE q.run_id = $1 AND q.node = nodes.node AND q.state = 'claimed') "
            "RETURNING node) "
            "DELETE FROM node_queue q USING d WHERE q.run_id = $1 AND q.node = d.node",
            {run_id, list}, "dropping the unfinished nodes of run " + run_id);
        if (!dropped.ok()) return dropped.status();
        auto resumed = c.Exec(
            "UPDATE runs SET status = 'running', error = '', finished_at = 0, updated_at = $2, "
            "epoch = epoch + 1 WHERE id = $1",
            {run_id, Num(now)}, "resuming run " + run_id);
        if (!resumed.ok()) return resumed.status();
        events.push_back(
            {run_id, 0, now, "", "run_resumed", EventData().Add("distributed", true).Done()});
        Status logged = InsertEvents(c, &events);
        if (!logged.ok()) return logged;
        auto step = AdvanceRun(c, workflow, run_id, now);
        return step.ok() ? Status::Ok() : step.status();
      },
      "resuming run " + run_id);
}

Result<std::vector<NodeClaim>> CurrentClaims(Connection& conn, const std::string& worker) {
  auto rows = conn.Exec(
      "SELECT run_id, node, attempt FROM node_queue WHERE worker_id = $1 AND state = 'claimed'",
      {worker}, "reading the claims of worker " + worker);
  if (!rows.ok()) return rows.status();
  std::vector<NodeClaim> out;
  for (int i = 0; i < rows->size(); ++i) {
    out.push_back({rows->str(i, 0), rows->str(i, 1), rows->int64(i, 2)});
  }
  return out;
}

Result<RunToWork> ReadRunToWork(Connection& conn, const std::string& run_id, bool with_script,
                                bool with_nodes) {
  RunToWork out;
  auto read = conn.Pipeline(
      {{std::string("SELECT ") + kRunColumnsNoScript + " FROM runs WHERE id = $1", {run_id}},
       {kScriptKey, {run_id}}},
      "reading run " + run_id);
  if (!read.ok()) return read.status();
  const Rows& run = (*read)[0];
  if (run.size() == 0) {
    return Status::Error(ErrorKind::kPermanent, "no run " + run_id + " in " + conn.name());
  }
  RunFromRow(run, 0, &out.run);
  if ((*read)[1].size() == 1) out.script_key = (*read)[1].str(0, 0);
  if (with_script) {
    auto version = conn.Exec(
        "SELECT version, created_at, script_path, script_sha256, script_text FROM script_versions "
        "WHERE run_id = $1 AND version = $2",
        {run_id, Num(out.run.script_version)}, "reading the script of run " + run_id);
    if (!version.ok()) return version.status();
    if (version->size() == 0) {
      return Status::Error(ErrorKind::kPermanent, "run " + run_id + " has no script version " +
                                                      std::to_string(out.run.script_version));
    }
    out.script.version = static_cast<int>(version->int64(0, 0));
    out.script.created_at = version->real(0, 1);
    out.script.script_path = version->str(0, 2);
    out.script.script_sha256 = version->str(0, 3);
    out.script.script_text = version->str(0, 4);
    auto modules = conn.Exec(
        "SELECT name, path, sha256, text FROM script_modules WHERE run_id = $1 AND version = $2 "
        "ORDER BY seq",
        {run_id, Num(out.run.script_version)}, "reading the modules of run " + run_id);
    if (!modules.ok()) return modules.status();
    for (int i = 0; i < modules->size(); ++i) {
      out.script.modules.push_back(
          {modules->str(i, 0), modules->str(i, 1), modules->str(i, 2), modules->str(i, 3)});
    }
  }
  if (!with_nodes) return out;
  auto nodes = ReadRows<NodeRecord>(
      conn, std::string("SELECT ") + kNodeColumns + " FROM nodes WHERE run_id = $1 ORDER BY ord",
      {run_id}, "reading the nodes of run " + run_id,
      [](const Rows& rows, int i, NodeRecord* n) { NodeFromRow(rows, i, n); });
  if (!nodes.ok()) return nodes.status();
  out.nodes = std::move(*nodes);
  return out;
}

namespace {

// The records ReadNodeInputs reads: those of `names` and the inner ones of
// `node`. Each arm of the UNION ALL reads through an index of its own,
// whatever the planner believes of the tables' sizes (an OR of the two was
// planned, while a run's tables were young, as a scan of the whole run, and
// kept that plan as they grew); without names the first arm is left out, so
// that the server keeps one plan for the statement (an empty array made
// the custom plan look so cheap that it planned at every call).
Statement NodeInputsRead(const std::string& run_id, const std::vector<std::string>& names,
                         const std::string& node) {
  const std::string inner = std::string("SELECT ") + kNodeColumns +
                            ", ord FROM nodes WHERE run_id = $1 AND node ~ '[[/]' AND "
                            "substring(node from '^[^[/]*') = $2 AND $2 <> ''";
  if (names.empty()) return {inner + " ORDER BY ord", {run_id, node}};
  return {std::string("SELECT ") + kNodeColumns + ", ord FROM nodes WHERE run_id = $1 AND node = "
              "ANY($3::text[]) UNION ALL " + inner + " ORDER BY ord",
          {run_id, node, ArrayLiteral(names)}};
}

}  // namespace

Result<NodeInputs> ReadNodeInputs(Connection& conn, const std::string& run_id,
                                  const std::vector<std::string>& names, const std::string& node,
                                  const std::vector<std::string>& kinds) {
  auto rows = conn.Pipeline(
      {NodeInputsRead(run_id, names, node),
       {std::string("SELECT ") + kEventColumns + " FROM events WHERE run_id = $1 AND node = $2 "
            "AND kind = ANY($3::text[]) UNION ALL SELECT " + kEventColumns + " FROM events "
            "WHERE run_id = $1 AND node = '' AND kind = $4 ORDER BY seq",
        {run_id, node, ArrayLiteral(kinds), std::string(kRerunEventKind)}}},
      "reading the nodes of run " + run_id);
  if (!rows.ok()) return rows.status();
  NodeInputs in;
  const Rows& records = (*rows)[0];
  in.records.resize(static_cast<size_t>(records.size()));
  for (int i = 0; i < records.size(); ++i) {
    NodeFromRow(records, i, &in.records[static_cast<size_t>(i)]);
  }
  const Rows& events = (*rows)[1];
  in.history.resize(static_cast<size_t>(events.size()));
  for (int i = 0; i < events.size(); ++i) {
    EventFromRow(events, i, &in.history[static_cast<size_t>(i)]);
  }
  return in;
}

}  // namespace keel::pg
