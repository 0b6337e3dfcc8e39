#include "engine/executor.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <oneapi/tbb/flow_graph.h>
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/info.h>
#include <oneapi/tbb/task_arena.h>

#include "engine/arena_pool.h"
#include "engine/caller_loop.h"
#include "engine/escalation.h"
#include "engine/run_state.h"

namespace keel {

Executor::Executor(Clock* clock, Store* store, Observer* observer)
    : clock_(clock), store_(store), observer_(observer), breakers_(store) {}

void Executor::WarmUp() {
  tbb::info::default_concurrency();
  tbb::task_arena arena(1);
  arena.initialize();
}

void Executor::Stop(const std::string& reason) {
  MutexLock lock(&active_mu_);
  for (RunState* state : active_) state->StopRun(reason);
}

void Executor::InitEnv(RunEnv* env, const ExecutorOptions& options) {
  env->clock = clock_;
  env->store = store_;
  env->observer = observer_;
  env->breakers = &breakers_;
  env->bulkhead = &bulkhead_;
  env->options = &options;
}

void Executor::OnGraph(RunEnv* env, const ExecutorOptions& options,
                       const std::function<void(const std::function<void()>& wait)>& body) {
  int workers = options.workers > 0 ? options.workers : tbb::info::default_concurrency();
  // Lets --workers exceed the core count; TBB caps its pool at the cores otherwise.
  std::unique_ptr<tbb::global_control> allow;
  if (workers > tbb::info::default_concurrency()) {
    allow = std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism,
                                                  static_cast<size_t>(workers));
  }
  std::optional<tbb::task_arena> own;
  std::optional<ArenaPool::Lease> lent;
  tbb::task_arena* arena;
  if (options.arenas != nullptr) {
    lent.emplace(options.arenas->Acquire());
    arena = &lent->arena();
  } else {
    arena = &own.emplace(workers);
  }
  // An arena of one slot: its one thread sleeps while the run waits
  // (engine/caller_loop.h) rather than spinning in oneTBB's wait.
  const bool one_slot = arena->max_concurrency() == 1;
  arena->execute([&] {
    tbb::flow::graph graph;
    // One dispatcher node launches every DAG node (of the run and of its
    // fallback workflows); dependency counting, joins and policies are in
    // RunState.
    using Task = std::pair<RunState*, int>;
    tbb::flow::function_node<Task> dispatch(graph, tbb::flow::unlimited,
                                            [](const Task& t) { t.first->Launch(t.second); });
    if (one_slot) {
      CallerLoop loop;
      env->reserve = [&loop] { loop.Reserve(); };
      env->release = [&loop] { loop.Release(); };
      env->post = [&loop](std::function<void()> fn) { loop.Post(std::move(fn)); };
      // A timer may launch a node (a best-effort join): from another thread
      // the launch is posted, as the arena's one thread may be asleep.
      env->launch = [&loop, &dispatch](RunState* run, int node) {
        if (loop.OnOwner()) {
          dispatch.try_put(Task{run, node});
        } else {
          loop.Post([&dispatch, run, node] { dispatch.try_put(Task{run, node}); });
        }
      };
      body([&loop, &graph] { loop.Run([&graph] { graph.wait_for_all(); }); });
      return;
    }
    env->reserve = [&graph] { graph.reserve_wait(); };
    env->release = [&graph] { graph.release_wait(); };
    env->launch = [&dispatch](RunState* run, int node) { dispatch.try_put(Task{run, node}); };
    env->post = [arena, &graph](std::function<void()> fn) {
      graph.reserve_wait();
      // noexcept: a continuation that throws could never complete its node, so
      // terminating loudly beats hanging the run.
      arena->enqueue([fn = std::move(fn), &graph]() noexcept {
        fn();
        graph.release_wait();
      });
    };
    body([&graph] { graph.wait_for_all(); });
  });
}

RunOutcome Executor::Run(const WorkflowSpec& workflow, const std::string& run_id, JsonText params,
                         const std::unordered_map<std::string, NodeRecord>& earlier,
                         const ExecutorOptions& options, const RunHistory& history) {
  RunEnv env;
  InitEnv(&env, options);
  env.retry_budget.store(workflow.retry_budget);
  env.history = &history;
  env.earlier = &earlier;
  {
    MutexLock lock(&env.spend_mu);
    env.spent = history.spent;
    env.budget = options.budget.limited() ? options.budget : workflow.budget;
  }
  RunState state(workflow, run_id, params, &env, 0, "", {}, nullptr);
  env.root = &state;
  // Declared before the run is registered as active, so it outlives every
  // StopRun that may reach it.
  std::unique_ptr<RunState> escalation;
  RunOutcome outcome;
  {
    MutexLock lock(&active_mu_);
    active_.push_back(&state);
  }
  std::vector<int> ready = state.Prepare(earlier);
  if (observer_) {
    observer_->OnRunStarted(RunInfo{run_id, workflow.name,
                                    static_cast<int>(workflow.nodes.size()), state.kept_count()});
  }
  OnGraph(&env, options, [&](const std::function<void()>& wait) {
    for (int i : ready) env.launch(&state, i);
    wait();
    outcome = state.Outcome();
    const WorkflowSpec* target = EscalationTarget(
        workflow, outcome, env.stopped.load(std::memory_order_acquire), options.library);
    if (target == nullptr) return;
    // An escalation acts on the failure (it pages someone, opens a ticket):
    // it starts only once the failure is recorded. Storage that gives up
    // first stops the run unescalated, and the resume that repeats the
    // failure escalates it, once.
    if (env.store != nullptr && !env.store->Flush().ok()) return;
    const int number = history.escalations + 1;
    escalation = MakeEscalation(&env, *target, run_id, params, number,
                                EscalationFailure(run_id, workflow, outcome, number));
    RunOutcome ended =
        RunEscalation(&env, escalation.get(), target->name, run_id, number, outcome.error, wait);
    outcome.escalation = target->name;
    outcome.escalation_status = ended.status;
    outcome.escalation_error = ended.error;
  });
  {
    MutexLock lock(&active_mu_);
    active_.erase(std::find(active_.begin(), active_.end(), &state));
  }
  if (observer_) observer_->OnRunFinished(outcome.status);
  return outcome;
}

RunOutcome Executor::Escalate(const WorkflowSpec& target, const std::string& run_id,
                              const JsonText& params, int number, JsonText failure,
                              const std::string& error, const ExecutorOptions& options) {
  RunEnv env;
  InitEnv(&env, options);
  env.retry_budget.store(target.retry_budget);
  {
    MutexLock lock(&env.spend_mu);
    env.budget = options.budget.limited() ? options.budget : target.budget;
  }
  std::unique_ptr<RunState> escalation =
      MakeEscalation(&env, target, run_id, params, number, std::move(failure));
  // The escalation is the whole of what this process runs of the run.
  env.root = escalation.get();
  {
    MutexLock lock(&active_mu_);
    active_.push_back(escalation.get());
  }
  RunOutcome ended;
  OnGraph(&env, options, [&](const std::function<void()>& wait) {
    ended = RunEscalation(&env, escalation.get(), target.name, run_id, number, error, wait);
  });
  {
    MutexLock lock(&active_mu_);
    active_.erase(std::find(active_.begin(), active_.end(), escalation.get()));
  }
  return ended;
}

}  // namespace keel
