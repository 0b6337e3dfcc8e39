#pragma once
// The frontier step of a distributed run, as statements: what the run's
// records and queue say (engine/run_frontier.h) turned into the writes that
// record the nodes it cancels, queue the nodes it makes ready (claiming
// some for a worker) and finish a settled run. Reading the inputs and
// running the writes is the caller's, inside a transaction that holds the
// run's row lock, so that the steps of one run follow one another.
//
// Free functions; the statements are built, not run, so a caller can send
// them with its COMMIT in one round trip.

#include <string>
#include <unordered_set>
#include <vector>

#include "engine/run_frontier.h"
#include "engine/store.h"
#include "engine/workflow.h"
#include "store/postgres/pg_connection.h"

namespace keel::pg {

// The channel workers LISTEN on; committed work that made nodes ready NOTIFYs it.
inline constexpr char kReadyChannel[] = "keel_ready";

// One claim of one node.
struct NodeClaim {
  std::string run_id;
  std::string node;
  int64_t attempt = 0;
};

// What the frontier of a run is decided from.
struct FrontierInputs {
  std::vector<NodeRecord> records;         // its own nodes' records, first-insert order
  std::unordered_set<std::string> launched;  // queued or claimed, not done
  int escalations = 0;  // the run's escalations so far (store/postgres/pg_escalations.h)
};

// The three reads of a run's frontier inputs, in this order, for a pipeline.
std::vector<Statement> FrontierReads(const std::string& run_id);
// The inputs from the results of FrontierReads' statements.
FrontierInputs FrontierFromRows(const Rows& nodes, const Rows& queue, const Rows& escalations);
// Reads them (one round trip).
Result<FrontierInputs> ReadFrontierInputs(Connection& conn, const std::string& run_id);

// The writes of one frontier step and what it decided.
struct FrontierStep {
  std::vector<Statement> writes;    // run before the events
  std::vector<EventRecord> events;  // their seqs not given yet
  bool notify = false;              // nodes became ready for any worker
  // Ready nodes are claimed for the worker by writes[claim_write] (-1: none),
  // whose rows (ClaimsFromRows) say which, at which attempt.
  int claim_write = -1;
  bool settled = false;             // the step finishes (or parks) the run
  RunStatus status = RunStatus::kRunning;
  // The run settled failed and its workflow's on_failure is now due, for
  // any worker to claim (store/postgres/pg_escalations.h).
  bool escalation_due = false;
};

// The step of run `run_id` of `workflow` from `inputs`: up to
// `claim_children` ready nodes are claimed by `worker` (none when empty).
// A step that settles the run failed makes its `on_failure`, if it has
// one, due: escalation number inputs.escalations + 1, with ctx.failure as
// the records say.
FrontierStep PlanFrontierStep(const WorkflowSpec& workflow, const std::string& run_id,
                              const FrontierInputs& inputs, double now,
                              const std::string& worker, int claim_children);

// The claims of run `run_id` a step's claim write answered with.
std::vector<NodeClaim> ClaimsFromRows(const std::string& run_id, const Rows& rows);

// The step that finishes run `run_id` failed with `error` whatever its
// nodes say (its workflow could not be loaded).
FrontierStep PlanFailedRun(const std::string& run_id, const std::string& error, double now);

// Queues run `run_id`'s `nodes` ready for any worker: a node's row is
// made if it has none (its claims going on from the last attempt
// claim_log holds), and made ready again if it is done.
Statement QueueReady(const std::string& run_id, const std::vector<std::string>& nodes);

// Runs a planned step's writes, events (through InsertEvents) and NOTIFY
// on `conn`, inside the caller's transaction.
Status ApplyFrontierStep(Connection& conn, FrontierStep* step);

}  // namespace keel::pg
