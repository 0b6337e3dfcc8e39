#pragma once
// Runs one claimed node of a distributed run through the Executor, with the
// whole policy stack (timeouts, retries, breakers, fallbacks): the workflow
// is trimmed to the node and its direct dependencies. Those that finished
// with an output are restored from their records as a resume restores
// them; the others stand in as they were recorded (failed, cancelled) or,
// still running elsewhere, until the node's join goes ahead without them,
// so joins, ctx.failed and ctx.skipped are what the executor gives.
//
// Free function; blocks its caller (not a TBB worker). Safe to call from
// several threads at once, each with its own Executor and ClaimStore.

#include <string>
#include <vector>

#include "cli/claim_store.h"
#include "engine/arena_pool.h"
#include "engine/executor.h"
#include "engine/store.h"
#include "engine/workflow.h"

namespace keel::cli {

struct NodeRun {
  std::vector<NodeRecord> records;  // inner records first, the node's own record last
  std::vector<EventRecord> events;
};

// Runs node `node` of `workflow` (one of `library`, the script's workflows)
// for run `run` whose node records are `records`, going on from what its
// earlier attempts checkpointed (`history`), on `executor` (whose store is
// `store`), in an arena lent by `arenas`. A node missing from `workflow` is
// recorded failed, naming it. Only the node's own records and events are
// returned.
NodeRun RunClaimedNode(Executor& executor, ClaimStore& store, ArenaPool* arenas,
                       const WorkflowSpec& workflow, const std::vector<WorkflowSpec>& library,
                       const RunRecord& run, const std::string& node,
                       const std::vector<NodeRecord>& records, const RunHistory& history,
                       double now);

// Node `node` of run `run` recorded failed (kPermanent) with `message`,
// without running: its script does not load, say.
NodeRun FailedNode(const RunRecord& run, const std::string& node, const std::string& message,
                   double now);

}  // namespace keel::cli
