#pragma once
// The node queue of distributed runs (`keel worker`, schema version 2):
// which nodes of which runs are ready, who claimed them at which attempt,
// and the fenced commit of a claimed node's outcome.
//
// A node becomes ready when the run's frontier (engine/run_frontier.h)
// says so; a worker claims it with FOR UPDATE SKIP LOCKED, which bumps its
// attempt; the worker's commit of the outcome goes through only while that
// attempt is still the node's current claim, so a paused or partitioned
// worker whose claim was re-queued and taken again changes nothing. Leases
// are measured on the database's clock.
//
// Free functions; each takes the connection it is given (one thread at a
// time) and runs its own transaction unless said otherwise. Every claim,
// commit, discarded commit, re-queue and hand-back is logged in claim_log
// with its attempt number.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/run_frontier.h"
#include "engine/status.h"
#include "engine/store.h"
#include "engine/workflow.h"
#include "engine/workflow_index.h"
#include "store/postgres/pg_connection.h"
#include "store/postgres/pg_frontier_step.h"

namespace keel::pg {

// Registers worker `id` (one row per process) with its lease, heartbeat now.
Status RegisterWorker(Connection& conn, const std::string& id, const Owner& process,
                      double lease_s);
// Removes the rows of workers on host `host` whose process is gone
// (`alive` false), so their claims go back to ready at the next
// RequeueExpired instead of when their lease runs out. Returns how many.
Result<int64_t> ReapDeadWorkers(Connection& conn, const std::string& host,
                                const std::function<bool(const Owner&)>& alive);
// Removes worker `id`'s row (a clean exit), after its claims were handed back.
Status UnregisterWorker(Connection& conn, const std::string& id);
// Sets worker `id`'s heartbeat to the database's now. Fails (kPermanent)
// when the row is gone.
Status WorkerHeartbeat(Connection& conn, const std::string& id);

// Claims up to `n` ready nodes of any run, oldest ready first, for worker
// `worker`: one statement (SKIP LOCKED), each claim's attempt bumped.
Result<std::vector<NodeClaim>> ClaimReady(Connection& conn, const std::string& worker, int n);
// ClaimReady's statement (n > 0), to run in a pipeline of one's own, and
// the claims its rows hold.
Statement ClaimReadyStatement(const std::string& worker, int n);
std::vector<NodeClaim> ReadyClaimsFromRows(const Rows& rows);

// Puts back to ready every node claimed by a worker whose heartbeat is
// older than its lease, or whose worker row is gone. Returns how many.
Result<int64_t> RequeueExpired(Connection& conn);

// The claims worker `worker` holds now: a claim it runs that is not among
// them was re-queued, or cancelled by a join that went ahead without it.
Result<std::vector<NodeClaim>> CurrentClaims(Connection& conn, const std::string& worker);

// Puts `claims` of worker `worker` back to ready, those still current.
Status HandBack(Connection& conn, const std::string& worker, const std::vector<NodeClaim>& claims);

// Queues run `run` (status running, recorded with its script and modules
// as Store::CreateRun records them) of `workflow`, with a run_started
// event, and makes its root nodes ready. One transaction.
Status SubmitRun(Connection& conn, const RunRecord& run, const WorkflowSpec& workflow,
                 double now);

// Takes distributed run `run_id` of `workflow` up again (`keel resume`), in
// one transaction: the records of its nodes that did not finish with an
// output (failed, cancelled, waiting) go, the run is running again (epoch
// bumped, error cleared, a run_resumed event), and the nodes then ready
// are queued. Fails (kPermanent), changing nothing, when the run does not
// exist, succeeded or was cancelled.
//
// With `rerun` (`keel resume --from`; the node it names and every node
// downstream of it, engine/rerun.h), those nodes run again too: their
// records and the records inside them go, a rerun event names them (so
// their checkpoints are not replayed), and a succeeded run may be resumed.
// Refused while nodes of the run are claimed by workers.
struct Rerun {
  std::string from;
  std::vector<std::string> nodes;
};
Status ResumeRun(Connection& conn, const std::string& run_id, const WorkflowSpec& workflow,
                 double now, const Rerun* rerun = nullptr);
// Distributed runs still running whose queued nodes are all done: their
// last commit did not settle them (its worker died, or lost the database,
// between the commit and the step that settles).
Result<std::vector<std::string>> IdleRuns(Connection& conn);
// Takes the frontier step of run `run_id` of `workflow` when it is running
// and none of its queued nodes is open: the step that finishes it (or
// queues what is left). One transaction, the run's row locked; a run that
// is busy or finished is left as it is (the step returned settles nothing).
Result<FrontierStep> SettleIdleRun(Connection& conn, const WorkflowSpec& workflow,
                                   const std::string& run_id, double now);

// Whether run `run_id` was queued node by node (SubmitRun).
Result<bool> IsDistributed(Connection& conn, const std::string& run_id);

// What a worker commits for a claimed node: the node's own final record
// (last in `records`), the records of its inner nodes before it, and the
// events the attempt produced.
struct NodeCommit {
  NodeClaim claim;
  std::string worker;
  std::vector<NodeRecord> records;
  std::vector<EventRecord> events;
  // Up to this many nodes are claimed by `worker` in the same transaction:
  // those the commit makes ready (so a chain does not wait in the queue),
  // else the oldest ready nodes of any run (so a slot the commit frees
  // takes its next node without a round trip of its own).
  int claim_next = 0;
  // The workflow's index, when the caller keeps one (a worker does, per
  // loaded script): which nodes are leaves without reading every node's
  // `after` list at each commit. Null: CommitNode reads them.
  const WorkflowIndex* index = nullptr;
};

struct CommitOutcome {
  // The claim was no longer current (re-queued, claimed again, or the run
  // was finished meanwhile): nothing was written.
  bool superseded = false;
  std::vector<NodeClaim> claimed;  // nodes claimed for the worker (claim_next)
  bool run_settled = false;        // the commit finished (or parked) the run
  RunStatus run_status = RunStatus::kRunning;
  // The commit finished the run failed and made its on_failure due.
  bool escalation_due = false;
};

// In one transaction (pg_node_commit.cc; one round trip for a node no node
// depends on, two for others): locks the run row (so completions of one
// run are ordered), checks `commit.claim` is the node's current claim by
// `commit.worker`, writes the records and events, marks the node done,
// records the nodes the frontier cancels, queues the nodes it makes ready
// (claiming up to claim_next of them, else as many ready nodes of any run),
// and when nothing is left finishes the run with the executor's status and error
// (run_finished event), making its escalation due when it failed and its
// workflow has an `on_failure` (store/postgres/pg_escalations.h). NOTIFYs
// kReadyChannel when nodes or an escalation became ready for others. A
// null `workflow` (the worker could not load the run's script) finishes the
// run failed with the node's error.
Result<CommitOutcome> CommitNode(Connection& conn, const WorkflowSpec* workflow,
                                 const NodeCommit& commit, double now);

// Writes inner records and events of a node while its claim runs (a long
// map's items), fenced like CommitNode: returns false, writing nothing,
// once the claim is no longer current.
Result<bool> WriteUnderClaim(Connection& conn, const NodeClaim& claim, const std::string& worker,
                             const std::vector<NodeRecord>& records,
                             std::vector<EventRecord> events);

// What a worker reads to run a node of run `run_id`: the run, the script
// version it runs with (modules included) and its node records in
// first-insert order. `with_script` false leaves `script` empty (the
// worker has it cached under run.script_sha256 and run.script_version).
struct RunToWork {
  RunRecord run;  // script_text left empty
  // The identity of the run's current script version: its sha256 and its
  // modules' sha256s, joined; workers cache loaded scripts under it.
  std::string script_key;
  ScriptVersion script;
  std::vector<NodeRecord> nodes;
};
// `with_nodes` false leaves `nodes` empty (see ReadNodeInputs).
Result<RunToWork> ReadRunToWork(Connection& conn, const std::string& run_id, bool with_script,
                                bool with_nodes = true);

// What running node `node` of run `run_id` needs, however large the run:
// the records named in `names` (its dependencies') and those inside the
// node (its map items and inner nodes), in first-insert order; and the
// node's own events of the kinds in `kinds` (what an earlier attempt left
// to go on from) with the run's rerun events (which void what came before
// them), in seq order. One round trip.
struct NodeInputs {
  std::vector<NodeRecord> records;
  std::vector<EventRecord> history;
};
Result<NodeInputs> ReadNodeInputs(Connection& conn, const std::string& run_id,
                                  const std::vector<std::string>& names, const std::string& node,
                                  const std::vector<std::string>& kinds);

}  // namespace keel::pg
