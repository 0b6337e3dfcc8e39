#pragma once
// Executor: runs one workflow's DAG on a tbb::flow::graph.
//
// Nodes are launched through one flow-graph dispatcher node inside a
// task_arena of `workers` threads; dependency counting, skip/optional/cancel
// propagation and checkpointing are done here. A node body completes through
// a callback, so I/O and timers never hold a worker: the graph is kept alive
// with reserve_wait()/release_wait() while an attempt is out.
//
// One Executor may run several workflows one after another or at once; runs
// share its bulkheads (max_concurrency per key) and breakers. Run() and
// Escalate() block their caller, which must not be a TBB worker of the same
// arena.

#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/breaker_registry.h"
#include "engine/bulkhead.h"
#include "engine/clock.h"
#include "engine/mutex.h"
#include "engine/observer.h"
#include "engine/store.h"
#include "engine/workflow.h"

namespace keel {

class ArenaPool;
class RunState;
struct RunEnv;

struct ExecutorOptions {
  int workers = 0;       // <= 0: all cores
  int max_inflight = 0;  // attempts running at once across the run; <= 0: unlimited
  // The workflows fallbacks and `on_failure` may name (usually every
  // workflow of the file); null: none. Must outlive Run().
  const std::vector<WorkflowSpec>* library = nullptr;
  // Stops the run (its unfinished nodes cancelled) once LLM calls have spent
  // more; the workflow's own budget when not limited here.
  Budget budget;
  // Wait nodes (engine/wait_node.h) whose signal or timer has not come: false
  // parks them (the run ends kWaiting); true waits for them in this process.
  bool hold_waits = false;
  // Where the run's graph runs: an arena lent by this pool (its concurrency
  // replaces `workers`), or, when null, an arena of its own made for the
  // run. Must outlive Run().
  ArenaPool* arenas = nullptr;
};

// What an earlier attempt of a run left, besides its node records: the
// nodes' checkpoints (by node name, oldest first; a fallback workflow's
// nodes by FallbackJournalKey) and what it spent.
struct RunHistory {
  std::unordered_map<std::string, std::vector<JsonText>> journals;
  Usage spent;
  // The due time (wall seconds; 0: none) each wait node recorded when it was
  // first reached ("wait_started" events), by node name.
  std::unordered_map<std::string, double> wait_due;
  // The highest attempt number each node started ("node_started" events),
  // by record name: a node taken over from a process that died mid-node
  // counts on from it.
  std::unordered_map<std::string, int> attempts;
  // How many escalations earlier attempts of the run started
  // (engine/escalation.h), so the next one is numbered after them.
  int escalations = 0;
};

// Where RunHistory::journals keeps the checkpoints of `node` of fallback
// workflow `workflow` run for node `parent`.
inline std::string FallbackJournalKey(std::string_view parent, std::string_view workflow,
                                      std::string_view node) {
  std::string key(parent);
  key.append(1, '\x1f').append(workflow).append(1, '\x1f').append(node);
  return key;
}

struct RunOutcome {
  RunStatus status = RunStatus::kFailed;
  std::string error;  // first required failure, "node: kind: message"
  // Indexed like WorkflowSpec::nodes. To keep memory bounded on large runs,
  // only sink nodes (no dependents) keep their output here; every output is
  // in the store.
  std::vector<NodeResult> results;
  std::vector<int> attempts;  // attempts so far, per node, earlier ones included
  // The node whose failure is `error`, indexed like `results`; -1 when none
  // (the run did not fail, or was stopped as a whole).
  int failed_node = -1;
  // The escalation the run's failure started (engine/escalation.h): its
  // workflow ("" when the run did not escalate), how it ended and why.
  std::string escalation;
  RunStatus escalation_status = RunStatus::kFailed;
  std::string escalation_error;
};

class Executor {
 public:
  // `store` and `observer` may be null. All three must outlive the Executor.
  Executor(Clock* clock, Store* store, Observer* observer);

  // Runs `workflow` (which must have passed Validate) as run `run_id`, with
  // `params` as ctx.params. `earlier` holds the records of an earlier attempt
  // of the same run (resume), by node name: nodes recorded succeeded, fallback
  // or skipped are not run again and feed their recorded outputs to
  // dependents; the others run again, their attempt count continuing. Queues
  // node records and events to the store; does not write the run row.
  // When the run ends failed and the workflow has an `on_failure`, runs
  // that workflow once more in the same run (engine/escalation.h), after
  // waiting for the store to commit what the run queued (Store::Flush); a
  // store that gives up instead leaves the run unescalated. Returns when
  // every node, the escalation's included, has finished.
  RunOutcome Run(const WorkflowSpec& workflow, const std::string& run_id, JsonText params,
                 const std::unordered_map<std::string, NodeRecord>& earlier,
                 const ExecutorOptions& options, const RunHistory& history = {});

  // Escalation `number` of run `run_id`, whose nodes ran and ended failed
  // with `error` elsewhere (on `keel worker` processes): runs `target` (the
  // run's workflow's `on_failure`) as RunEscalation does, with `params`
  // (the run's) and ctx.failure `failure` (EscalationFailure), recording its
  // nodes under "on_failure#N/" and framing them with escalation_started and
  // escalation_finished. Returns the escalation's outcome once every one of
  // its nodes has finished (Stop cancels them).
  RunOutcome Escalate(const WorkflowSpec& target, const std::string& run_id, const JsonText& params,
                      int number, JsonText failure, const std::string& error,
                      const ExecutorOptions& options);

  // Does oneTBB's one-time set-up of the process (machine topology, its
  // allocator, the thread pool's bookkeeping), which the first Run would
  // otherwise pay for. Meant for a spare thread while the caller does other
  // start-up work, such as loading the script. Any thread, any time.
  static void WarmUp();

  // Stops every run in progress on this Executor: nothing more starts, what
  // is in flight is cancelled, and each run fails with `reason`. Runs
  // started later are not affected. Any thread.
  void Stop(const std::string& reason);

 private:
  // Fills the parts of `env` every run shares, for a run with `options`.
  void InitEnv(RunEnv* env, const ExecutorOptions& options);
  // Runs `body` in a task arena of options.workers threads with a flow
  // graph whose dispatcher launches nodes: `env`'s launch, post, reserve and
  // release are set for it; `body` gets the graph's wait_for_all.
  void OnGraph(RunEnv* env, const ExecutorOptions& options,
               const std::function<void(const std::function<void()>& wait)>& body);

  Clock* clock_;
  Store* store_;
  Observer* observer_;
  BreakerRegistry breakers_;
  Bulkhead bulkhead_;
  Mutex active_mu_;
  std::vector<RunState*> active_ GUARDED_BY(active_mu_);  // runs in progress
};

}  // namespace keel
