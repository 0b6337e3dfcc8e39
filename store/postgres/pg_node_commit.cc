// A worker's fenced commit of a claimed node (CommitNode) and of a long
// node's inner records (WriteUnderClaim). A node no node depends on commits
// in one statement (keel_commit_leaf). Any other commit is one transaction
// in two round trips: the first locks the run's row and the claim's queue
// row and reads what deciding needs; the second sends every write, the
// events and COMMIT together. Either way the event-cursor lock (the one
// lock shared by every run) is held only while the server runs the last
// statements.

#include <chrono>
#include <optional>
#include <thread>

#include "store/postgres/pg_frontier_step.h"
#include "store/postgres/pg_node_queue.h"
#include "store/postgres/pg_row_arrays.h"
#include "store/postgres/pg_rows.h"

namespace keel::pg {
namespace {

constexpr char kLockRun[] = "SELECT status, last_seq FROM runs WHERE id = $1 FOR UPDATE";
constexpr char kLockClaim[] =
    "SELECT state, attempt, worker_id FROM node_queue WHERE run_id = $1 AND node = $2 FOR UPDATE";
constexpr char kMarkDone[] =
    "WITH d AS (UPDATE node_queue SET state = 'done' WHERE run_id = $1 AND node = $2 "
    "RETURNING node) "
    "INSERT INTO claim_log (run_id, node, attempt, worker_id, action) "
    "SELECT $1, node, $3, $4, $5 FROM d";
// How the commit is logged: "park" when the node parked on its wait (it
// will be woken and claimed again), "commit" when it finished.
std::string CommitAction(const NodeCommit& commit) {
  bool parked = !commit.records.empty() && commit.records.back().status == NodeStatus::kWaiting;
  return parked ? "park" : "commit";
}
// Marks the claim's queue row done and logs the commit.
Statement MarkDone(const NodeCommit& commit) {
  return {kMarkDone,
          {commit.claim.run_id, commit.claim.node, Num(commit.claim.attempt), commit.worker,
           CommitAction(commit)}};
}

constexpr char kLogSuperseded[] =
    "INSERT INTO claim_log (run_id, node, attempt, worker_id, action) "
    "VALUES ($1, $2, $3, $4, 'superseded')";
constexpr char kSetLastSeq[] = "UPDATE runs SET last_seq = $2 WHERE id = $1";

constexpr char kCommitLeaf[] =
    "SELECT keel_commit_leaf($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, "
    "$16, $17, $18)";
constexpr char kSupersededState[] = "KL001";  // keel_commit_leaf's refusal

constexpr int kAttempts = 5;

// The first round trip's answer: whether the claim is still current, and
// the results of the reads sent after the locks.
struct Fence {
  bool current = false;
  int64_t last_seq = 0;
  int64_t xid = 0;
  std::vector<Rows> reads;
};

// Round trip 1: BEGIN, the run's row and the claim's queue row locked (in
// that order, as every writer of a distributed run takes them), then `reads`.
// A claim that is not current is rolled back here, as is a failure (whose
// kind says whether trying again may help); a current one stays open.
Result<Fence> OpenFence(Connection& conn, const NodeClaim& claim, const std::string& worker,
                        std::vector<Statement> reads, const std::string& what) {
  std::vector<Statement> first{{"BEGIN", {}},
                               {kLockRun, {claim.run_id}},
                               {kLockClaim, {claim.run_id, claim.node}},
                               {"SELECT txid_current()", {}}};
  for (Statement& read : reads) first.push_back(std::move(read));
  auto rows = conn.Pipeline(first, what);
  if (!rows.ok()) {
    // Nothing was written; a failure worth trying again says kTransient.
    if (conn.InTransaction()) (void)conn.ExecScript("ROLLBACK", "rolling back a commit");
    return rows.status();
  }
  Fence fence;
  const Rows& run = (*rows)[1];
  const Rows& queue = (*rows)[2];
  fence.current = run.size() == 1 && run.text(0, 0) == "running" && queue.size() == 1 &&
                  queue.text(0, 0) == "claimed" && queue.int64(0, 1) == claim.attempt &&
                  queue.text(0, 2) == worker;
  fence.last_seq = run.size() == 1 ? run.int64(0, 1) : 0;
  fence.xid = (*rows)[3].int64(0, 0);
  for (size_t i = 4; i < rows->size(); ++i) fence.reads.push_back(std::move((*rows)[i]));
  if (!fence.current) (void)conn.ExecScript("ROLLBACK", what);
  return fence;
}

// Round trip 2: `writes`, then `events` numbered after `last_seq` (the run
// row is locked), NOTIFY when asked, COMMIT.
std::vector<Statement> Closing(std::vector<Statement> writes, const std::string& run_id,
                               std::vector<EventRecord> events, int64_t last_seq, bool notify) {
  if (!events.empty()) {
    EventRows rows;
    for (EventRecord& e : events) {
      e.seq = ++last_seq;
      rows.Add(e);
    }
    writes.push_back({kSetLastSeq, {run_id, Num(last_seq)}});
    writes.push_back({"SELECT pg_advisory_xact_lock($1)", {Num(kEventCursorLock)}});
    writes.push_back(rows.ToStatement());
  }
  if (notify) writes.push_back({std::string("NOTIFY ") + kReadyChannel, {}});
  writes.push_back({"COMMIT", {}});
  return writes;
}

// How a failed round trip ends: rolled back and worth running again
// (a deadlock, a connection lost before COMMIT went), committed after all
// (COMMIT's answer was lost, and txid_status says it went through), or an
// error to return.
enum class Failure { kRetry, kCommitted, kSuperseded, kError };

Failure Classify(Connection& conn, const Status& failed, bool commit_sent, int64_t xid) {
  std::string state = SqlStateOf(failed);
  if (conn.InTransaction()) (void)conn.ExecScript("ROLLBACK", "rolling back a commit");
  if (state == kSupersededState) return Failure::kSuperseded;
  if (!state.empty()) return state == "40001" || state == "40P01" ? Failure::kRetry : Failure::kError;
  if (!commit_sent) return Failure::kRetry;
  // No answer to a pipeline that held COMMIT: ask, once connected again.
  for (int i = 0; i < kAttempts && !conn.Healthy(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50 * (i + 1)));
  }
  auto outcome = conn.Exec("SELECT txid_status($1)", {Num(xid)},
                           "looking up the outcome of an unanswered commit");
  if (!outcome.ok()) return Failure::kError;
  if (outcome->text(0, 0) == "committed") return Failure::kCommitted;
  return outcome->text(0, 0) == "aborted" ? Failure::kRetry : Failure::kError;
}

// Whether attempt `attempt` may go on: after a pause when it is not the
// first, with the connection up (else *last says it was lost).
bool Connected(Connection& conn, int attempt, const std::string& what, Status* last) {
  if (attempt > 1) std::this_thread::sleep_for(std::chrono::milliseconds(5 * attempt * attempt));
  if (conn.Healthy()) return true;
  *last = Status::Error(ErrorKind::kTransient, conn.name() + ": " + what + ": connection lost");
  return false;
}

// The reads deciding the commit of `commit` needs beyond the fence: the
// frontier's inputs when the node has dependents or is not one of the
// workflow's (an item of a map, say) (`full`); none for a node without,
// which commits in one round trip (CommitLeaf).
std::vector<Statement> CommitReads(const WorkflowSpec* workflow, const NodeCommit& commit,
                                   bool* full) {
  *full = false;
  if (workflow == nullptr) return {};
  const std::string& node = commit.claim.node;
  bool leaf = false;
  if (commit.index != nullptr) {
    leaf = commit.index->IsLeaf(node);
  } else {
    leaf = workflow->Find(node) >= 0;
    for (const NodeSpec& n : workflow->nodes) {
      for (const std::string& dep : n.after) leaf = leaf && dep != node;
    }
  }
  if (leaf) return {};
  *full = true;
  return FrontierReads(commit.claim.run_id);
}

// The records of a commit, as one upsert.
Statement CommitRecords(const NodeCommit& commit) {
  NodeRows records;
  for (const NodeRecord& rec : commit.records) records.Add(rec, std::nullopt);
  return records.ToStatement();
}

// What CommitLeaf found: whether other nodes of the run are still open (if
// not, the run is to be settled), and the nodes it claimed.
struct Leaf {
  bool others_open = false;
  std::vector<NodeClaim> claimed;
};

// The commit of a node no node depends on and the claim of up to
// commit.claim_next ready nodes, in one round trip and one transaction:
// keel_commit_leaf (fence, writes and events), then ClaimReady's statement,
// which never waits (SKIP LOCKED). The run's row is locked first, as every
// writer of a distributed run takes it, and only while the server runs the
// two.
Result<Leaf> CommitLeaf(Connection& conn, const NodeCommit& commit, const std::string& what) {
  const NodeClaim& claim = commit.claim;
  NodeRows records;
  for (const NodeRecord& rec : commit.records) records.Add(rec, std::nullopt);
  EventRows events;
  for (const EventRecord& e : commit.events) events.Add(e);
  Params params{claim.run_id, claim.node, Num(claim.attempt), commit.worker, CommitAction(commit),
                Num(kEventCursorLock)};
  for (auto& column : records.LeafArrays()) params.push_back(std::move(column));
  for (auto& column : events.LeafArrays()) params.push_back(std::move(column));
  std::vector<Statement> pipeline{{kCommitLeaf, std::move(params)}};
  if (commit.claim_next > 0) {
    pipeline.push_back(ClaimReadyStatement(commit.worker, commit.claim_next));
  }
  auto rows = conn.Pipeline(pipeline, what);
  if (!rows.ok()) return rows.status();
  Leaf leaf;
  leaf.others_open = (*rows)[0].boolean(0, 0);
  if (rows->size() > 1) leaf.claimed = ReadyClaimsFromRows((*rows)[1]);
  return leaf;
}

// Whether every record and event of `commit` is of its claim's run, as
// keel_commit_leaf writes them.
bool OfClaimedRun(const NodeCommit& commit) {
  for (const NodeRecord& rec : commit.records) {
    if (rec.run_id != commit.claim.run_id) return false;
  }
  for (const EventRecord& e : commit.events) {
    if (e.run_id != commit.claim.run_id) return false;
  }
  return true;
}

// A commit whose claim was no longer current: nothing was written; logged.
Result<CommitOutcome> Superseded(Connection& conn, const NodeCommit& commit,
                                 const std::string& what) {
  const NodeClaim& claim = commit.claim;
  auto logged = conn.Exec(kLogSuperseded,
                          {claim.run_id, claim.node, Num(claim.attempt), commit.worker}, what);
  if (!logged.ok()) return logged.status();
  CommitOutcome out;
  out.superseded = true;
  return out;
}

// The error a run whose workflow could not be loaded fails with.
std::string LoadFailure(const NodeCommit& commit) {
  if (commit.records.empty()) return "the run's workflow could not be loaded";
  const NodeRecord& own = commit.records.back();
  return own.node + ": " + Status::Error(own.error_kind, own.error_message).ToString();
}

}  // namespace

Result<CommitOutcome> CommitNode(Connection& conn, const WorkflowSpec* workflow,
                                 const NodeCommit& commit, double now) {
  const NodeClaim& claim = commit.claim;
  const std::string what = "committing node " + claim.node + " of run " + claim.run_id;
  Status last;
  for (int attempt = 1; attempt <= kAttempts; ++attempt) {
    if (!Connected(conn, attempt, what, &last)) continue;
    bool full = false;
    std::vector<Statement> reads = CommitReads(workflow, commit, &full);
    CommitOutcome out;
    if (workflow != nullptr && !full && OfClaimedRun(commit)) {
      auto leaf = CommitLeaf(conn, commit, what);
      if (leaf.ok()) {
        out.claimed = std::move(leaf->claimed);
        if (leaf->others_open) return out;
        // The run's last open node: settling it is a step of its own.
        auto settled = SettleIdleRun(conn, *workflow, claim.run_id, now);
        if (!settled.ok()) return settled.status();
        out.run_settled = settled->settled;
        out.run_status = settled->status;
        out.escalation_due = settled->escalation_due;
        return out;
      }
      // Without an answer the commit may have gone in: the next attempt's
      // fence then finds the claim done and reports it superseded.
      last = leaf.status();
      Failure failure = Classify(conn, last, false, 0);
      if (failure == Failure::kSuperseded) return Superseded(conn, commit, what);
      if (failure == Failure::kRetry) continue;
      return last;
    }
    auto fence = OpenFence(conn, claim, commit.worker, std::move(reads), what);
    if (!fence.ok() || !fence->current) {
      if (fence.ok()) return Superseded(conn, commit, what);
      last = fence.status();
      if (last.kind() == ErrorKind::kTransient) continue;
      return last;
    }
    std::optional<FrontierInputs> inputs;
    if (full) inputs = FrontierFromRows(fence->reads[0], fence->reads[1], fence->reads[2]);
    FrontierStep step;
    if (workflow == nullptr) {
      step = PlanFailedRun(claim.run_id, LoadFailure(commit), now);
    } else if (inputs) {
      // The frontier as it will be once this commit is in.
      inputs->launched.erase(claim.node);
      if (!commit.records.empty() && commit.records.back().node == claim.node) {
        const NodeRecord& own = commit.records.back();
        bool replaced = false;
        for (NodeRecord& rec : inputs->records) {
          if (rec.node == own.node) {
            rec = own;
            replaced = true;
          }
        }
        if (!replaced) inputs->records.push_back(own);
      }
      step = PlanFrontierStep(*workflow, claim.run_id, *inputs, now, commit.worker,
                              commit.claim_next);
    }
    std::vector<Statement> writes;
    if (!commit.records.empty()) writes.push_back(CommitRecords(commit));
    writes.push_back(MarkDone(commit));
    const int claim_at =
        step.claim_write < 0 ? -1 : static_cast<int>(writes.size()) + step.claim_write;
    for (Statement& s : step.writes) writes.push_back(std::move(s));
    // No child to claim: the freed slot's next node is any ready one.
    const bool claims_any = claim_at < 0 && commit.claim_next > 0;
    const int any_at = claims_any ? static_cast<int>(writes.size()) : -1;
    if (claims_any) writes.push_back(ClaimReadyStatement(commit.worker, commit.claim_next));
    std::vector<EventRecord> events = commit.events;
    for (EventRecord& e : step.events) events.push_back(std::move(e));
    auto done = conn.Pipeline(
        Closing(std::move(writes), claim.run_id, std::move(events), fence->last_seq, step.notify),
        what);
    if (!done.ok()) {
      last = done.status();
      Failure failure = Classify(conn, last, true, fence->xid);
      if (failure == Failure::kRetry) continue;
      if (failure != Failure::kCommitted) return last;
    }
    // Without the answer (a commit found committed afterwards) the children
    // claimed are not known here: the worker's sweep finds them among its
    // claims in the database and hands them back.
    if (done.ok() && claim_at >= 0) out.claimed = ClaimsFromRows(claim.run_id, (*done)[claim_at]);
    if (done.ok() && any_at >= 0) out.claimed = ReadyClaimsFromRows((*done)[any_at]);
    out.run_settled = step.settled;
    out.run_status = step.status;
    out.escalation_due = step.escalation_due;
    return out;
  }
  return last;
}

Result<bool> WriteUnderClaim(Connection& conn, const NodeClaim& claim, const std::string& worker,
                             const std::vector<NodeRecord>& records,
                             std::vector<EventRecord> events) {
  const std::string what = "writing the inner records of node " + claim.node;
  Status last;
  for (int attempt = 1; attempt <= kAttempts; ++attempt) {
    if (!Connected(conn, attempt, what, &last)) continue;
    auto fence = OpenFence(conn, claim, worker, {}, what);
    if (!fence.ok() || !fence->current) {
      if (fence.ok()) return false;
      last = fence.status();
      if (last.kind() == ErrorKind::kTransient) continue;
      return last;
    }
    std::vector<Statement> writes;
    if (!records.empty()) {
      NodeRows rows;
      for (const NodeRecord& rec : records) rows.Add(rec, std::nullopt);
      writes.push_back(rows.ToStatement());
    }
    auto done =
        conn.Pipeline(Closing(std::move(writes), claim.run_id, events, fence->last_seq, false), what);
    if (done.ok()) return true;
    last = done.status();
    Failure failure = Classify(conn, last, true, fence->xid);
    if (failure == Failure::kCommitted) return true;
    if (failure != Failure::kRetry) return last;
  }
  return last;
}

}  // namespace keel::pg
