#pragma once
// Escalation: a workflow's `on_failure`, another workflow of the same file
// that runs once, in the same run, when a run of it ends failed — to notify
// someone, open a ticket, clean up.
//
// The escalation runs after every node of the run has finished, on the same
// graph, budget and breakers, as a RunState recorded under the prefix
// "on_failure#N/" (N counts the run's escalations: each failed end of a
// resumed run gets records of its own). Its nodes get ctx.failure
// (EscalationFailure) and the run's params over the escalation workflow's
// defaults. It is framed by the run-level events escalation_started and
// escalation_finished; the run's status stays failed whatever the
// escalation does, and an escalation never escalates (its workflow's own
// `on_failure` is for runs of that workflow).
//
// A run that did not fail does not escalate, nor does one stopped as a
// whole (keel cancel, its budget, storage that cannot be written): the
// escalation is for failures of the run's work. It starts only once the
// failure is recorded, so a failure that storage lost is escalated by the
// resume that repeats it, not twice.
//
// Pure functions, except RunEscalation, which runs on the thread of
// Executor::Run or Executor::Escalate (a `keel worker` escalating a run
// whose nodes ran on workers, store/postgres/pg_escalations.h).

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/executor.h"
#include "engine/json_text.h"
#include "engine/store.h"
#include "engine/workflow.h"

namespace keel {

struct RunEnv;
class RunState;

// The recorded-name prefix of a run's escalation number `number` (1-based):
// "on_failure#1/". Node names hold no '#', so it never meets a node's own
// records; ValidateEscalations keeps the name "on_failure" free for it.
std::string EscalationPrefix(int number);

// The workflow run `outcome` of `workflow` escalates to: its `on_failure`,
// looked up in `library`, when the run failed and was not `stopped`;
// otherwise null.
const WorkflowSpec* EscalationTarget(const WorkflowSpec& workflow, const RunOutcome& outcome,
                                     bool stopped, const std::vector<WorkflowSpec>* library);

// ctx.failure of escalation `number` of run `run_id` of `workflow`, which
// ended with `outcome`: {run_id, workflow, escalation, error, node, kind,
// message, attempts, failed}. `node` .. `attempts` describe the failure
// that failed the run (as a fallback's ctx.failure does its node's);
// `failed` lists every node that ended failed, in workflow order, each as
// {node, kind, message, attempts}.
JsonText EscalationFailure(const std::string& run_id, const WorkflowSpec& workflow,
                           const RunOutcome& outcome, int number);

// The outcome of a run of `workflow` that ended failed with `error`, as its
// own nodes' `records` (any order; inner records ignored) say: each node's
// status, error and attempts, and `failed_node`, the spec index of the node
// `error` names (-1: none). For a run whose nodes ran on `keel worker`
// processes, whose outcome no one process holds.
RunOutcome RecordedOutcome(const WorkflowSpec& workflow, const std::vector<NodeRecord>& records,
                           const std::string& error, int failed_node);

// The RunState of escalation `number` of run `run_id` to `target`: its
// nodes recorded under EscalationPrefix(number), ctx.failure = `failure`
// (EscalationFailure), ctx.params = `params` (the run's) over `target`'s
// defaults. Not started; RunEscalation runs it.
std::unique_ptr<RunState> MakeEscalation(RunEnv* env, const WorkflowSpec& target,
                                         const std::string& run_id, const JsonText& params,
                                         int number, JsonText failure);

// Runs `escalation` (from MakeEscalation, of run `run_id`, number `number`,
// to workflow `target`) on `env`, after the run ended failed with `error`:
// records escalation_started, launches its nodes, calls `wait` (the graph's
// wait_for_all), records escalation_finished and returns the escalation's
// outcome. `escalation` must outlive every StopRun of the run.
RunOutcome RunEscalation(RunEnv* env, RunState* escalation, const std::string& target,
                         const std::string& run_id, int number, const std::string& error,
                         const std::function<void()>& wait);

// Checks the `on_failure` of every workflow of one file: it names a
// declared workflow (did-you-mean otherwise), not the workflow itself; that
// workflow has no wait node (an escalation runs to its end at once); and
// the escalating workflow has no node named "on_failure" (the prefix of its
// escalation's records).
std::vector<Diagnostic> ValidateEscalations(const std::vector<WorkflowSpec>& workflows);

}  // namespace keel
