#pragma once
// NodeStatus and RunStatus: the states recorded for nodes and runs.

#include <string_view>

namespace keel {

enum class NodeStatus {
  kPending,    // not started yet
  kRunning,    // an attempt is under way
  kSucceeded,  // finished with an output
  kFailed,     // finished with an error
  kSkipped,    // its `when` said no
  kCancelled,  // never ran, or was stopped, because of other nodes or the run
  kFallback,   // its fallback workflow produced the output
  // A wait node (engine/wait_node.h) whose signal has not come or whose timer
  // is not due: the run is parked on it. Not kept on resume: the wait runs
  // again, keeping the due time it recorded.
  kWaiting,
};

enum class RunStatus {
  kRunning,
  kSucceeded,
  kFailed,
  kDegraded,  // optional nodes failed, every required node finished
  // Stopped by SIGINT or SIGTERM before it ended; not finished, and resumable.
  // (A run whose process died without a word stays recorded kRunning.)
  kInterrupted,
  // Parked on a wait node (a signal or a durable timer); not finished, and
  // resumable. Its finish time stays 0, like an interrupted run's.
  kWaiting,
  // Stopped by `keel cancel`; finished: it cannot be resumed, gc may delete it.
  kCancelled,
  // Recorded but not started: `keel submit`, the service's API or a schedule
  // queued it (DESIGN.md §9-10). It has no owner and no nodes yet; the
  // process that starts it claims it like a resume (Store::ClaimRun). Not
  // finished: gc leaves it, and cancel records it cancelled at once.
  kQueued,
};

std::string_view NodeStatusName(NodeStatus status);
bool ParseNodeStatus(std::string_view name, NodeStatus* status);
std::string_view RunStatusName(RunStatus status);
bool ParseRunStatus(std::string_view name, RunStatus* status);

// Succeeded and fallback nodes have an output their dependents may use.
inline bool Succeeded(NodeStatus s) {
  return s == NodeStatus::kSucceeded || s == NodeStatus::kFallback;
}
// Succeeded, fallback and skipped nodes keep their outcome on resume.
inline bool IsKeptOnResume(NodeStatus s) {
  return s == NodeStatus::kSucceeded || s == NodeStatus::kFallback || s == NodeStatus::kSkipped;
}
inline bool IsFinished(NodeStatus s) {
  return s != NodeStatus::kPending && s != NodeStatus::kRunning;
}

}  // namespace keel
