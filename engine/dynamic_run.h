#pragma once
// The running part of a dynamic node (engine/dynamic_node.h): MapRun drives
// a keel.map's items, SubWorkflowRun a keel.call's workflow or a keel.loop's
// iterations. Each is created by RunState::StartDynamic once the node's
// `start` function has produced its value, is owned by the RunState the node
// belongs to, and finishes the node (RunState::Finish) as its very last act:
// after that the owning state, and with it the run object, may be gone.
//
// Items and inner nodes run as child RunStates (shared_ptr, so StopAll can
// hold one while the child finishes); a finished child is destroyed on a
// worker after its completion callback returned, which is why the policy
// stack touches only RunEnv after a node's completion.
//
// Thread-safety: every method may be called from any worker; the state of a
// run is guarded by its `mu_`.

#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/dynamic_node.h"
#include "engine/mutex.h"
#include "engine/run_state.h"

namespace keel {

class DynamicRun {
 public:
  virtual ~DynamicRun() = default;
  // Cancels what runs for the node and starts nothing more; the node then
  // fails with `reason` once its running children have finished.
  virtual void StopAll(const std::string& reason) = 0;
};

// Drives one keel.map node: creates items lazily, at most `window` in
// flight; keeps each finished item's output (JSON text, in order) and only
// the in-flight items' states.
class MapRun final : public DynamicRun {
 public:
  // `list` is the JSON array `over` returned and `spans` its elements.
  MapRun(RunState* parent, int node, JsonText list, std::vector<std::pair<size_t, size_t>> spans);
  // Starts the first items; finishes the node at once for an empty list.
  // Must be the caller's last use of the map.
  void Begin();
  void StopAll(const std::string& reason) override;

 private:
  // Creates items while the window has room, then finishes the node when
  // everything is done. Must be the caller's last use of the map.
  void Pump();
  // Starts item k (0-based) as a child RunState.
  void StartItem(size_t k, const std::string& name);
  void ItemDone(size_t k, RunState* child);
  // Builds the node's result and finishes it.
  void Complete();
  std::string ItemName(size_t k) const;
  // True while the store has more than kMaxBacklog writes queued: no item
  // starts then. With nothing in flight to call Pump again, arms a timer
  // that does. Requires mu_.
  bool HoldBack() EXCLUSIVE_LOCKS_REQUIRED(mu_);

  RunState* const parent_;
  const int node_;
  const DynamicNode& dyn_;
  const WorkflowSpec* workflow_ = nullptr;  // a map of workflows; else null
  const JsonText list_;
  const std::vector<std::pair<size_t, size_t>> spans_;
  const std::vector<std::pair<std::string, JsonText>> deps_;  // the map's, seen by items
  const size_t window_;
  const size_t allowed_failures_;
  const std::string prefix_;  // the map's record name

  Mutex mu_;
  size_t next_ GUARDED_BY(mu_) = 0;  // the next item to create
  size_t in_flight_ GUARDED_BY(mu_) = 0;
  size_t succeeded_ GUARDED_BY(mu_) = 0;
  size_t failed_ GUARDED_BY(mu_) = 0;
  size_t cancelled_ GUARDED_BY(mu_) = 0;          // stopped once the map was failing
  size_t first_error_index_ GUARDED_BY(mu_) = 0;  // of first_error_, while set
  size_t kept_ GUARDED_BY(mu_) = 0;               // restored from an earlier attempt of the run
  bool failing_ GUARDED_BY(mu_) = false;          // more failures than tolerated, or stopped
  bool completed_ GUARDED_BY(mu_) = false;
  bool waiting_ GUARDED_BY(mu_) = false;  // a HoldBack timer is armed
  Status first_error_ GUARDED_BY(mu_);
  std::string stop_reason_ GUARDED_BY(mu_);
  std::vector<JsonText> outputs_ GUARDED_BY(mu_);  // by item; null: none (yet)
  std::unordered_map<RunState*, std::shared_ptr<RunState>> live_ GUARDED_BY(mu_);
};

// Drives one keel.call (one run of the workflow) or keel.loop node (runs of
// the workflow, one per iteration, until done_when says so).
class SubWorkflowRun final : public DynamicRun {
 public:
  // `value` is what `start` returned: the call's params (an object or null).
  SubWorkflowRun(RunState* parent, int node, const WorkflowSpec* workflow, JsonText value);
  // Must be the caller's last use of the run.
  void Begin();
  void StopAll(const std::string& reason) override;

 private:
  void StartIteration(int iteration, JsonText previous);
  void ChildDone(int iteration, RunState* child);
  void Judged(int iteration, JsonText output, NodeResult verdict);

  RunState* const parent_;
  const int node_;
  const DynamicNode& dyn_;
  const WorkflowSpec* const workflow_;
  const JsonText value_;

  Mutex mu_;
  std::shared_ptr<RunState> child_ GUARDED_BY(mu_);
  std::string stop_reason_ GUARDED_BY(mu_);
};

// The failure of a finished child state that ended failed: the kind of its
// first failure no join or `optional` excused, and its message, naming the
// inner node ("c/fetch: transient: ..."). Declared here for the two runs.
Status ChildFailure(RunState& child);

}  // namespace keel
