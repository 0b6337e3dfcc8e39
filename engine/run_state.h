#pragma once
// RunState: one execution of one workflow's DAG — the run itself, a
// fallback workflow running on behalf of one of its nodes, a dynamic node's
// items or called workflow, or the run's escalation (engine/escalation.h).
//
// It counts dependencies, applies join rules, runs every node behind its
// policy stack (bulkheads, breaker, attempt timeout, retry with backoff,
// total timeout, fallback workflows), propagates skips and cancellations,
// and records what happened. Nodes are launched through the executor's
// dispatcher on TBB workers; waits (backoff, timeouts, queued bulkheads)
// are timers or callbacks that hold no thread, and keep the graph alive with
// reserve_wait()/release_wait() until they have fired or been cancelled.
//
// Thread-safety: each Slot's static fields are written before the run
// starts. A slot's result is written once by the thread that finishes the
// node and published by the release store of `done` (and by the acq_rel
// decrements of its dependents' `pending`). A slot's attempt state is
// guarded by its `mu`. Everything else is atomic or guarded as marked.

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/breaker_registry.h"
#include "engine/bulkhead.h"
#include "engine/clock.h"
#include "engine/executor.h"
#include "engine/mutex.h"
#include "engine/observer.h"
#include "engine/store.h"
#include "engine/workflow.h"

namespace keel {

class RunState;
class DynamicRun;

// What every RunState of one Executor::Run shares. Owned by Run().
struct RunEnv {
  Clock* clock = nullptr;
  Store* store = nullptr;        // may be null
  Observer* observer = nullptr;  // may be null
  BreakerRegistry* breakers = nullptr;
  Bulkhead* bulkhead = nullptr;
  const ExecutorOptions* options = nullptr;
  std::function<void()> reserve;                       // graph.reserve_wait()
  std::function<void()> release;                       // graph.release_wait()
  std::function<void(RunState*, int)> launch;          // dispatch a node
  std::function<void(std::function<void()>)> post;     // run a closure on a worker
  std::atomic<int> retry_budget{-1};                   // -1: unlimited
  RunState* root = nullptr;                            // the run itself
  // The run's escalation (engine/escalation.h) once it started; StopRun
  // stops it with the run. Outlives every StopRun that may see it.
  std::atomic<RunState*> escalation{nullptr};
  const RunHistory* history = nullptr;                 // what earlier attempts left; may be null
  // The records of an earlier attempt of the run, by node name (resume);
  // map items and inner nodes of calls and loops look theirs up here.
  const std::unordered_map<std::string, NodeRecord>* earlier = nullptr;
  // LLM spending and the budget that stops the run.
  Mutex spend_mu;
  Usage spent GUARDED_BY(spend_mu);
  Budget budget GUARDED_BY(spend_mu);
  std::string stop_reason GUARDED_BY(spend_mu);  // why the run was stopped
  std::atomic<bool> stopped{false};  // set once, after stop_reason
};

class RunState {
 public:
  // `parent_node` is empty for the run itself; for a fallback workflow it
  // names the node it runs for, whose `inherited` deps its nodes also see,
  // and `on_done` is called once when all its nodes have finished.
  RunState(const WorkflowSpec& wf, std::string run_id, JsonText params, RunEnv* env, int depth,
           std::string parent_node, std::vector<std::pair<std::string, JsonText>> inherited,
           std::function<void(RunState&)> on_done);
  ~RunState();

  // Makes a state that runs for a dynamic node (a map item, a called
  // workflow, a loop iteration) record its nodes in the run as `prefix` +
  // their names, and give its nodes ctx.item / ctx.index. Call before
  // Prepare.
  void SetFrame(std::string prefix, JsonText item, int index);
  // Gives every node ctx.failure = `failure` (a JSON object), as a fallback
  // workflow's nodes get it. Call before Prepare.
  void SetFailure(JsonText failure) { failure_ = std::move(failure); }
  // The name node i is recorded under.
  std::string RecordName(int i) const { return prefix_ + wf_.nodes[i].name; }

  // Applies records of an earlier attempt of the run (see Executor::Run) and
  // returns the nodes ready to launch.
  std::vector<int> Prepare(const std::unordered_map<std::string, NodeRecord>& earlier);
  int kept_count() const;

  // Runs on a TBB worker, through the dispatcher.
  void Launch(int i);

  // Stops the run this state belongs to: nothing more starts, every
  // unfinished node (here and in fallback runs) is cancelled, and the run
  // fails with `reason`. Only the first call counts. Any thread.
  void StopRun(const std::string& reason);

  // Moves the results out; call once, after every node finished.
  RunOutcome Outcome();
  // For a fallback workflow: its status and the output of its output node.
  RunStatus Status() const;
  JsonText OutputOf(int node) const;

 private:
  enum class Phase { kIdle, kStarting, kQueued, kAttempt, kBackoff, kFallback, kDone };
  enum class Stop { kNone, kAttemptTimeout, kTotalTimeout, kAbandoned };

  struct Slot {
    // Static once the run starts.
    std::vector<int> deps;
    std::vector<int> dependents;
    bool kept = false;         // restored from an earlier attempt of the run
    bool keep_output = false;  // a sink, or a fallback workflow's output node
    bool unneeded = false;     // resume: nothing left depends on it; recorded cancelled
    // Dependency counting and joins.
    std::atomic<int> pending{0};        // dependencies not finished
    std::atomic<int> dep_succeeded{0};  // dependencies that succeeded
    std::atomic<bool> fired{false};     // launched (joins may fire early)
    std::atomic<bool> join_timer_started{false};
    std::atomic<int> consumers{0};  // dependents yet to finish (frees the output)
    std::atomic<int> needed_by{0};  // dependents that may still want this node
    std::atomic<bool> done{false};  // result is final (release/acquire)
    NodeResult result{NodeStatus::kPending, nullptr, Status::Ok()};
    // Attempt state. Mutable: const readers (Excused) lock it too.
    mutable Mutex mu;
    Phase phase GUARDED_BY(mu) = Phase::kIdle;
    Stop stop GUARDED_BY(mu) = Stop::kNone;
    bool abandoned GUARDED_BY(mu) = false;
    std::string abandon_reason GUARDED_BY(mu);
    int attempts GUARDED_BY(mu) = 0;
    int attempts_before GUARDED_BY(mu) = 0;  // recorded by earlier processes (resume)
    double last_delay GUARDED_BY(mu) = 0;
    double started_wall GUARDED_BY(mu) = 0;
    double attempt_started GUARDED_BY(mu) = 0;  // clock Now() as the attempt began
    double started_mono GUARDED_BY(mu) = 0;
    double deadline GUARDED_BY(mu) = 0;
    std::unique_ptr<NodeContext> ctx GUARDED_BY(mu);
    std::shared_ptr<CancelToken> token GUARDED_BY(mu);
    TimerId attempt_timer GUARDED_BY(mu) = 0;
    TimerId total_timer GUARDED_BY(mu) = 0;
    TimerId backoff_timer GUARDED_BY(mu) = 0;
    TimerId join_timer GUARDED_BY(mu) = 0;
    Bulkhead::Ticket ticket GUARDED_BY(mu) = 0;
    int ticket_stage GUARDED_BY(mu) = 0;
    int slots_held GUARDED_BY(mu) = 0;  // bulkhead stages acquired for the current attempt
    std::vector<JsonText> journal GUARDED_BY(mu);  // NodeContext::checkpoint steps so far
  };

  // Resume: which nodes are still needed, by index. A node is not needed
  // when it has dependents, did not finish (failed nodes run again), and every
  // dependent is kept from the earlier attempt or is itself not needed.
  std::vector<bool> NeededOnResume(
      const std::unordered_map<std::string, NodeRecord>& earlier) const;
  // Dependencies and joins (run_state.cc).
  bool ResolveDeps(int i, NodeContext* ctx, std::string* cancel_reason, int* succeeded);
  void NotifyDependents(int i, bool succeeded);
  void Abandon(int d, const std::string& reason);
  // Records attempt `attempt` of node i as running, and tells the observer.
  void RecordStarted(int i, int attempt, double started_wall);
  void Finish(int i, NodeResult result);
  void Emit(int i, std::string_view kind, std::string data);
  // Records breaker transition `t` of node i's circuit; `reopens` counts the
  // re-opens in a row (engine/circuit_breaker.h Reopens) for open events.
  void EmitBreakerTransition(int i, BreakerTransition t, int reopens);
  bool Excused(int i) const;
  // Marks node d abandoned and stops what it is doing; false when it was
  // done or abandoned already. *launched says whether it had started.
  bool MarkAbandoned(int d, const std::string& reason, bool* launched);
  // Abandons every unfinished node, here and in fallback runs (budget).
  void StopAll(const std::string& reason);
  // StopAll of the run's root state and of its escalation, if one started.
  void StopStates(const std::string& reason);
  // NodeContext::spend and NodeContext::checkpoint of node i.
  bool Spend(int i, const Usage& usage, std::string data);
  void Checkpoint(int i, JsonText step);

  // Map, call and loop nodes (dynamic_node.cc).
  void StartDynamic(int i);
  friend class MapRun;
  friend class SubWorkflowRun;
  friend keel::Status ChildFailure(RunState& child);

  // The policy stack (node_attempt.cc).
  void StartAttempt(int i);
  void AcquireSlots(int i, int stage);
  void ReleaseSlots(int i);
  void RunAttempt(int i);
  void AttemptDone(int i, NodeResult result, bool admitted, int64_t probe);
  bool ScheduleRetry(int i, const NodeResult& result);
  void OnAttemptTimeout(int i, int attempt);
  void OnTotalTimeout(int i);
  void GiveUp(int i, NodeResult result);
  void StartFallback(int i, size_t k, NodeResult last);
  void FallbackDone(int i, size_t k, NodeResult last, RunState& child);

  std::string BulkheadKey(int i, int stage) const;

  // Wait nodes (wait_node.cc): NodeContext::wait of node i, and the due times
  // an earlier attempt of the run recorded for its waiting nodes.
  class Waiter;
  void StartWait(int i, NodeCompletion done);
  void RestoreWaits(const std::unordered_map<std::string, NodeRecord>& earlier);

  const WorkflowSpec& wf_;
  const std::string run_id_;
  const JsonText params_;
  RunEnv* env_;
  const int depth_;
  const std::string parent_node_;  // empty: the run itself
  const std::vector<std::pair<std::string, JsonText>> inherited_;
  const std::function<void(RunState&)> on_done_;
  // A fallback workflow's: why the node it runs for failed, as NodeContext::failure.
  // Set before Prepare; read-only afterwards.
  JsonText failure_;
  std::vector<Slot> slots_;
  std::atomic<int> remaining_{0};  // nodes not finished yet
  Mutex mu_;
  // Failures and cancellations in order, "node: kind: message".
  std::vector<std::pair<int, std::string>> errors_ GUARDED_BY(mu_);
  std::vector<std::unique_ptr<RunState>> children_ GUARDED_BY(mu_);  // fallback runs
  Mutex wait_mu_;
  // Due time (wall seconds; 0: none) of each wait node, fixed when first reached.
  std::unordered_map<int, double> wait_due_ GUARDED_BY(wait_mu_);
  // Map, call and loop nodes that started (dynamic_node.cc).
  std::vector<std::unique_ptr<DynamicRun>> dynamic_ GUARDED_BY(mu_);
  // Set by SetFrame before the state starts, read-only afterwards.
  std::string prefix_;
  bool records_;  // nodes are recorded (the run and dynamic nodes' states; not fallbacks)
  JsonText item_;
  int index_ = 0;
  // A map tolerated failed items, or a sub-workflow ended degraded.
  std::atomic<bool> degraded_{false};
};

}  // namespace keel
