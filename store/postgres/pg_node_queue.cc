#include "store/postgres/pg_node_queue.h"

#include <unordered_set>

#include "engine/event_data.h"
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

// Whether `claim` is node's current claim by `worker`; locks its queue row.
Result<bool> ClaimIsCurrent(Connection& conn, const NodeClaim& claim, const std::string& worker) {
  auto row = conn.Exec(
      "SELECT state, attempt, worker_id FROM node_queue WHERE run_id = $1 AND node = $2 FOR UPDATE",
      {claim.run_id, claim.node}, "checking the claim of node " + claim.node);
  if (!row.ok()) return row.status();
  return row->size() == 1 && row->text(0, 0) == "claimed" && row->int64(0, 1) == claim.attempt &&
         row->text(0, 2) == worker;
}

// The frontier step of run `run_id` (its row locked by the caller): records
// the cancelled nodes, queues the ready ones (claiming up to
// `claim_children` for `worker`) and finishes a settled run.
// A PostgreSQL text[] literal of `items`.
std::string TextArray(const std::vector<std::string>& items) {
  std::string list = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) list += ",";
    list += "\"";
    for (char ch : items[i]) {
      if (ch == '"' || ch == '\\') list += '\\';
      list += ch;
    }
    list += "\"";
  }
  return list + "}";
}

// Finishes run `run_id` failed with `error` (its row locked by the caller).
Status FailRun(Connection& conn, const std::string& run_id, const std::string& error, double now,
               CommitOutcome* out) {
  out->run_settled = true;
  out->run_status = RunStatus::kFailed;
  auto done = conn.Exec(
      "UPDATE runs SET status = 'failed', error = $2, finished_at = $3, updated_at = $3 "
      "WHERE id = $1",
      {run_id, error, Num(now)}, "finishing run " + run_id);
  if (!done.ok()) return done.status();
  auto cleared = conn.Exec("DELETE FROM node_queue WHERE run_id = $1", {run_id},
                           "clearing the queue of run " + run_id);
  if (!cleared.ok()) return cleared.status();
  std::vector<EventRecord> events{{run_id, 0, now, "", "run_finished",
                                   EventData().Add("status", "failed").Add("error", error).Done()}};
  return InsertEvents(conn, &events);
}

Status Advance(Connection& conn, const WorkflowSpec& workflow, const std::string& run_id,
               double now, const std::string& worker, int claim_children, CommitOutcome* out) {
  // What the frontier needs of the run's own nodes (names never hold '['
  // or '/', which inner records' do): no outputs, no map items.
  auto records = ReadRows<NodeRecord>(
      conn,
      "SELECT node, status, error_kind, error_message FROM nodes WHERE run_id = $1 AND "
      "strpos(node, '[') = 0 AND strpos(node, '/') = 0 ORDER BY ord",
      {run_id}, "reading the nodes of run " + run_id, [](const Rows& rows, int i, NodeRecord* n) {
        n->node = rows.str(i, 0);
        if (!ParseNodeStatus(rows.text(i, 1), &n->status)) n->status = NodeStatus::kFailed;
        if (!ParseErrorKind(rows.text(i, 2), &n->error_kind)) n->error_kind = ErrorKind::kError;
        n->error_message = rows.str(i, 3);
      });
  if (!records.ok()) return records.status();
  auto queued = conn.Exec("SELECT node FROM node_queue WHERE run_id = $1 AND state <> 'done'",
                          {run_id}, "reading the queue of run " + run_id);
  if (!queued.ok()) return queued.status();
  std::unordered_set<std::string> launched;
  for (int i = 0; i < queued->size(); ++i) launched.insert(queued->str(i, 0));
  Frontier f = ComputeFrontier(workflow, *records, launched);

  std::vector<EventRecord> events;
  for (const FrontierCancel& c : f.cancel) {
    NodeRecord rec;
    rec.run_id = run_id;
    rec.node = c.node;
    rec.status = NodeStatus::kCancelled;
    rec.error_kind = ErrorKind::kCancelled;
    rec.error_message = c.reason;
    rec.finished_at = now;
    Status saved = UpsertNode(conn, rec);
    if (!saved.ok()) return saved;
    // A node another worker runs: its claim ends here, so its commit will
    // change nothing, and the worker stops it when it sees that.
    auto ended = conn.Exec(
        "UPDATE node_queue SET state = 'done' WHERE run_id = $1 AND node = $2 AND state <> 'done' "
        "RETURNING attempt, worker_id",
        {run_id, c.node}, "ending the claim of node " + c.node);
    if (!ended.ok()) return ended.status();
    if (ended->size() == 1) {
      Status logged = Log(conn, {run_id, c.node, ended->int64(0, 0)}, ended->str(0, 1), "cancel");
      if (!logged.ok()) return logged;
    }
    events.push_back({run_id, 0, now, c.node, "node_cancelled",
                      EventData()
                          .Add("seconds", 0.0)
                          .Add("attempts", 0)
                          .Add("kind", "cancelled")
                          .Add("message", c.reason)
                          .Done()});
  }
  bool notify = false;
  for (const std::string& node : f.ready) {
    bool mine = claim_children > 0 && !worker.empty();
    auto inserted = conn.Exec(
        mine ? "INSERT INTO node_queue (run_id, node, state, attempt, worker_id, claimed_at) "
               "VALUES ($1, $2, 'claimed', 1, $3, clock_timestamp()) ON CONFLICT DO NOTHING"
             : "INSERT INTO node_queue (run_id, node) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        mine ? Params{run_id, node, worker} : Params{run_id, node},
        "queueing node " + node + " of run " + run_id);
    if (!inserted.ok()) return inserted.status();
    if (inserted->affected() == 0) continue;
    if (mine) {
      --claim_children;
      NodeClaim claim{run_id, node, 1};
      Status logged = Log(conn, claim, worker, "claim");
      if (!logged.ok()) return logged;
      out->claimed.push_back(std::move(claim));
    } else {
      notify = true;
    }
  }
  if (f.settled) {
    out->run_settled = true;
    out->run_status = f.status;
    bool finished = f.status != RunStatus::kWaiting;
    EventData data;
    data.Add("status", RunStatusName(f.status));
    if (!f.error.empty()) data.Add("error", f.error);
    events.push_back({run_id, 0, now, "", "run_finished", data.Done()});
    auto done = conn.Exec(
        "UPDATE runs SET status = $2, error = $3, finished_at = $4, updated_at = $5 WHERE id = $1",
        {run_id, std::string(RunStatusName(f.status)), f.error, Num(finished ? now : 0.0),
         Num(now)},
        "finishing run " + run_id);
    if (!done.ok()) return done.status();
    auto cleared = conn.Exec("DELETE FROM node_queue WHERE run_id = $1", {run_id},
                             "clearing the queue of run " + run_id);
    if (!cleared.ok()) return cleared.status();
  }
  Status written = InsertEvents(conn, &events);
  if (!written.ok()) return written;
  if (notify) {
    auto notified = conn.Exec(std::string("NOTIFY ") + kReadyChannel, {}, "notifying workers");
    if (!notified.ok()) return notified.status();
  }
  return Status::Ok();
}

// Locks run `run_id`'s row; false when it is not running (finished,
// cancelled, or gone).
Result<bool> LockRunningRun(Connection& conn, const std::string& run_id) {
  auto run = conn.Exec("SELECT status FROM runs WHERE id = $1 FOR UPDATE", {run_id},
                       "locking run " + run_id);
  if (!run.ok()) return run.status();
  return run->size() == 1 && run->text(0, 0) == RunStatusName(RunStatus::kRunning);
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

Result<std::vector<NodeClaim>> ClaimReady(Connection& conn, const std::string& worker, int n) {
  if (n <= 0) return std::vector<NodeClaim>{};
  auto rows = conn.Exec(
      "WITH c AS (SELECT run_id, node FROM node_queue WHERE state = 'ready' "
      "           ORDER BY ready_at LIMIT $2 FOR UPDATE SKIP LOCKED), "
      "u AS (UPDATE node_queue q SET state = 'claimed', attempt = q.attempt + 1, "
      "      worker_id = $1, claimed_at = clock_timestamp() FROM c "
      "      WHERE q.run_id = c.run_id AND q.node = c.node RETURNING q.run_id, q.node, q.attempt), "
      "l AS (INSERT INTO claim_log (run_id, node, attempt, worker_id, action) "
      "      SELECT run_id, node, attempt, $1, 'claim' FROM u) "
      "SELECT run_id, node, attempt FROM u",
      {worker, Num(int64_t{n})}, "claiming ready nodes");
  if (!rows.ok()) return rows.status();
  std::vector<NodeClaim> out;
  for (int i = 0; i < rows->size(); ++i) {
    out.push_back({rows->str(i, 0), rows->str(i, 1), rows->int64(i, 2)});
  }
  return out;
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
        std::vector<EventRecord> started{
            {run.id, 0, now, "", "run_started",
             EventData().Add("workflow", run.workflow).Add("distributed", true).Done()}};
        Status logged = InsertEvents(c, &started);
        if (!logged.ok()) return logged;
        CommitOutcome ignored;
        return Advance(c, workflow, run.id, now, "", 0, &ignored);
      },
      "submitting run " + run.id);
}

Result<bool> IsDistributed(Connection& conn, const std::string& run_id) {
  auto rows = conn.Exec(
      "SELECT EXISTS (SELECT 1 FROM events WHERE run_id = $1 AND kind = 'run_started' AND "
      "data_json LIKE '%\"distributed\":true%')",
      {run_id}, "reading run " + run_id);
  if (!rows.ok()) return rows.status();
  return rows->boolean(0, 0);
}

Status ResumeRun(Connection& conn, const std::string& run_id, const WorkflowSpec& workflow,
                 double now) {
  return conn.Transaction(
      [&](Connection& c) -> Status {
        auto run = c.Exec("SELECT status FROM runs WHERE id = $1 FOR UPDATE", {run_id},
                          "locking run " + run_id);
        if (!run.ok()) return run.status();
        if (run->size() == 0) {
          return Status::Error(ErrorKind::kPermanent, "no run " + run_id + " in " + c.name());
        }
        std::string status = run->str(0, 0);
        if (status == RunStatusName(RunStatus::kSucceeded) ||
            status == RunStatusName(RunStatus::kCancelled)) {
          return Status::Error(ErrorKind::kPermanent, "run " + run_id + " " + status +
                                                          "; there is nothing to resume");
        }
        std::vector<std::string> names;
        for (const NodeSpec& n : workflow.nodes) names.push_back(n.name);
        // Own records that did not finish with an output run again; inner
        // records stay, for the nodes that run again to keep what they did.
        std::string list = TextArray(names);
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
        std::vector<EventRecord> events{
            {run_id, 0, now, "", "run_resumed", EventData().Add("distributed", true).Done()}};
        Status logged = InsertEvents(c, &events);
        if (!logged.ok()) return logged;
        CommitOutcome ignored;
        return Advance(c, workflow, run_id, now, "", 0, &ignored);
      },
      "resuming run " + run_id);
}

Result<CommitOutcome> CommitNode(Connection& conn, const WorkflowSpec* workflow,
                                 const NodeCommit& commit, double now) {
  CommitOutcome out;
  Status status = conn.Transaction(
      [&](Connection& c) -> Status {
        out = CommitOutcome();
        auto running = LockRunningRun(c, commit.claim.run_id);
        if (!running.ok()) return running.status();
        auto current = ClaimIsCurrent(c, commit.claim, commit.worker);
        if (!current.ok()) return current.status();
        if (!*running || !*current) {
          out.superseded = true;
          return Log(c, commit.claim, commit.worker, "superseded");
        }
        for (const NodeRecord& rec : commit.records) {
          Status saved = UpsertNode(c, rec);
          if (!saved.ok()) return saved;
        }
        std::vector<EventRecord> events = commit.events;
        Status written = InsertEvents(c, &events);
        if (!written.ok()) return written;
        auto done = c.Exec("UPDATE node_queue SET state = 'done' WHERE run_id = $1 AND node = $2",
                           {commit.claim.run_id, commit.claim.node}, "marking a node done");
        if (!done.ok()) return done.status();
        Status logged = Log(c, commit.claim, commit.worker, "commit");
        if (!logged.ok()) return logged;
        if (workflow == nullptr) {
          // The worker could not load the run's workflow: nothing can go on.
          const NodeRecord* own = commit.records.empty() ? nullptr : &commit.records.back();
          std::string error = own ? own->node + ": " +
                                        Status::Error(own->error_kind, own->error_message)
                                            .ToString()
                                  : "the run's workflow could not be loaded";
          return FailRun(c, commit.claim.run_id, error, now, &out);
        }
        // Only the dependents of the committed node can become ready or be
        // cancelled by it; with none, and other nodes still queued or
        // claimed (so the run is not settled), there is nothing to decide,
        // and a wide run's commits do not read every record of the run.
        int self = workflow->Find(commit.claim.node);
        bool has_dependents = false;
        for (const NodeSpec& n : workflow->nodes) {
          for (const std::string& dep : n.after) has_dependents |= dep == commit.claim.node;
        }
        if (self >= 0 && !has_dependents) {
          auto others = c.Exec(
              "SELECT EXISTS (SELECT 1 FROM node_queue WHERE run_id = $1 AND state <> 'done')",
              {commit.claim.run_id}, "reading the queue of run " + commit.claim.run_id);
          if (!others.ok()) return others.status();
          if (others->boolean(0, 0)) return Status::Ok();
        }
        return Advance(c, *workflow, commit.claim.run_id, now, commit.worker,
                       commit.claim_children, &out);
      },
      "committing node " + commit.claim.node + " of run " + commit.claim.run_id);
  if (!status.ok()) return status;
  return out;
}

Result<bool> WriteUnderClaim(Connection& conn, const NodeClaim& claim, const std::string& worker,
                             const std::vector<NodeRecord>& records,
                             std::vector<EventRecord> events) {
  bool current = false;
  Status status = conn.Transaction(
      [&](Connection& c) -> Status {
        auto lock = LockRunningRun(c, claim.run_id);
        if (!lock.ok()) return lock.status();
        auto mine = ClaimIsCurrent(c, claim, worker);
        if (!mine.ok()) return mine.status();
        current = *lock && *mine;
        if (!current) return Status::Ok();
        for (const NodeRecord& rec : records) {
          Status saved = UpsertNode(c, rec);
          if (!saved.ok()) return saved;
        }
        std::vector<EventRecord> copy = events;
        return InsertEvents(c, &copy);
      },
      "writing the inner records of node " + claim.node);
  if (!status.ok()) return status;
  return current;
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
  auto run = conn.Exec(std::string("SELECT ") + kRunColumnsNoScript + " FROM runs WHERE id = $1",
                       {run_id}, "reading run " + run_id);
  if (!run.ok()) return run.status();
  if (run->size() == 0) {
    return Status::Error(ErrorKind::kPermanent, "no run " + run_id + " in " + conn.name());
  }
  RunFromRow(*run, 0, &out.run);
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

Result<std::vector<NodeRecord>> ReadNodesFor(Connection& conn, const std::string& run_id,
                                             const std::vector<std::string>& names,
                                             const std::string& inside) {
  return ReadRows<NodeRecord>(
      conn,
      std::string("SELECT ") + kNodeColumns +
          " FROM nodes WHERE run_id = $1 AND (node = ANY($2::text[]) OR ($3 <> '' AND "
          "(starts_with(node, $3 || '[') OR starts_with(node, $3 || '/')))) ORDER BY ord",
      {run_id, TextArray(names), inside}, "reading the nodes of run " + run_id,
      [](const Rows& rows, int i, NodeRecord* n) { NodeFromRow(rows, i, n); });
}

Result<std::string> ScriptKey(Connection& conn, const std::string& run_id) {
  auto key = conn.Exec(
      "SELECT v.script_sha256 || coalesce((SELECT string_agg(m.sha256, ',' ORDER BY m.seq) "
      "FROM script_modules m WHERE m.run_id = v.run_id AND m.version = v.version), '') "
      "FROM runs r JOIN script_versions v ON v.run_id = r.id AND v.version = r.script_version "
      "WHERE r.id = $1",
      {run_id}, "reading the script of run " + run_id);
  if (!key.ok()) return key.status();
  if (key->size() == 0) {
    return Status::Error(ErrorKind::kPermanent, "no run " + run_id + " in " + conn.name());
  }
  return key->str(0, 0);
}

}  // namespace keel::pg
