#pragma once
// RunFrontier: what a run distributed over many workers does next, decided
// from its node records alone (no SQL, no threads): which nodes are ready
// to launch, which must be recorded cancelled without running (a required
// dependency failed, a join cannot be met, a join went ahead without them),
// and, once every node is settled, the run's status and error.
//
// It follows the executor's rules (engine/run_state.cc): joins all, any,
// quorum and best_effort (best_effort waits for every dependency here: a
// worker has no timer of the join), optional nodes, cancellation
// propagation, race losers excused, and waiting nodes parking their
// dependents. The run's status is what RunState::Status gives, and its
// error the first required failure in record order.
//
// Pure functions of their arguments; safe from any thread.

#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "engine/status.h"
#include "engine/store.h"
#include "engine/workflow.h"

namespace keel {

// A node the frontier decided must be recorded cancelled, never having run.
struct FrontierCancel {
  std::string node;
  std::string reason;  // as the executor words it: "dependency 'a' failed", ...
};

struct Frontier {
  std::vector<std::string> ready;          // to launch, in spec order
  std::vector<FrontierCancel> cancel;      // to record cancelled, in the order decided
  bool settled = false;                    // nothing is running, ready or left to decide
  RunStatus status = RunStatus::kRunning;  // when settled
  std::string error;                       // when settled and failed
  int failed_node = -1;                    // the node `error` names, by spec index
};

// The frontier of `workflow` given `records` (the run's records of its own
// nodes, in first-insert order; inner records such as "m[1]" are ignored)
// and `launched` (nodes claimed or queued but not recorded finished: they
// are not ready again; one that a join went ahead without is cancelled,
// its claim to be superseded). Cancellations are applied before
// deciding further, so a chain of nodes behind a failure is cancelled at once.
Frontier ComputeFrontier(const WorkflowSpec& workflow, const std::vector<NodeRecord>& records,
                         const std::unordered_set<std::string>& launched);

// Whether a node record is final: succeeded, fallback, skipped, failed,
// cancelled or waiting.
bool IsSettledStatus(NodeStatus status);

}  // namespace keel
