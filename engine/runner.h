#pragma once
// Runner: starts and resumes runs — the run-level half of the engine.
//
// Creates or claims the run row, restores finished nodes, drives the
// Executor, finishes the run row and flushes the store. Used by the CLI from
// its main thread; one Runner call at a time per Runner.

#include <string>
#include <utility>
#include <vector>

#include "engine/clock.h"
#include "engine/executor.h"
#include "engine/observer.h"
#include "engine/store.h"
#include "engine/workflow.h"

namespace keel {

struct ScriptInfo {
  std::string path;    // absolute
  std::string sha256;  // hex
  std::string text;
  std::vector<ScriptModule> modules;  // what it required while it loaded, in order
};

struct RunReport {
  std::string run_id;
  RunStatus status = RunStatus::kFailed;
  std::string error;
  // Outputs of the sink nodes (no dependents) that have one, in spec order.
  std::vector<std::pair<std::string, JsonText>> outputs;
  RunOutcome outcome;
  bool script_changed = false;  // resume: the script or a module differs from the recorded one
  int restored = 0;             // resume and fork: nodes kept from before
};

class Runner {
 public:
  // `store` must not be null; `observer` may be. All must outlive the Runner.
  Runner(Clock* clock, Store* store, Observer* observer);

  // New run of `workflow` with effective `params` (a JSON object).
  // Fails before anything is written when the store refuses the run.
  Result<RunReport> Start(const WorkflowSpec& workflow, const ScriptInfo& script, JsonText params,
                          const ExecutorOptions& options);

  // Continues `run` (as read from the store) with `workflow` loaded from the
  // script as it is now. Fails (kPermanent) when the owner is alive or a node
  // recorded finished no longer exists in the workflow. With `from` (a node
  // of `workflow`), runs that node and everything downstream of it again,
  // even in a finished run (Store::ClaimRunForRerun); a `from` the workflow
  // lacks fails with did-you-mean before anything is written.
  Result<RunReport> Resume(const RunRecord& run, const WorkflowSpec& workflow,
                           const ScriptInfo& script, const ExecutorOptions& options,
                           const std::string& from = "");

  // A new run of `workflow` with `params`, forked from `source` (as read from
  // the store): the recorded outputs of `source`'s nodes that are not `from`
  // or downstream of it are copied into the new run and kept, the rest run.
  // An empty `from` runs every node. Fails (kPermanent) before anything is
  // written when `from` is not a node of `workflow`.
  Result<RunReport> Fork(const RunRecord& source, const std::string& from,
                         const WorkflowSpec& workflow, const ScriptInfo& script, JsonText params,
                         const ExecutorOptions& options);

  // The configuration recorded with the runs this Runner starts, resumes or
  // forks from now on (RunRecord::config_json, a JSON object).
  void set_config_json(std::string config_json) { config_json_ = std::move(config_json); }

  // When set, Start and Fork record the new run queued (RunStatus::kQueued:
  // no owner, nothing run) and return at once with a report of status
  // kQueued; a later Resume of it starts it from the beginning, recording
  // run_started (`keel submit`, `keel fork --queue`).
  void set_queue_only(bool queue_only) { queue_only_ = queue_only; }
  // When set, Resume claims the run whoever owns it, fenced by the run's
  // epoch alone: `keel serve` handed it over at that epoch (Store::HandOffRun)
  // to this process only (`keel resume --handoff-epoch`).
  void set_handoff(bool handoff) { handoff_ = handoff; }

  // A fresh, time-sortable run id such as "261123-175206-a3f9".
  std::string NewRunId();

 private:
  Result<RunReport> Execute(const WorkflowSpec& workflow, const std::string& run_id,
                            JsonText params, const std::unordered_map<std::string, NodeRecord>& restored,
                            const ExecutorOptions& options, const RunHistory& history);

  // Creates `run` (its id chosen here) with `kept`, retrying a taken id.
  Status CreateWithFreshId(RunRecord* run, const std::vector<NodeRecord>& kept);

  Clock* clock_;
  Store* store_;
  std::string config_json_ = "{}";
  bool queue_only_ = false;
  bool handoff_ = false;
  Observer* observer_;
  Executor executor_;
};

}  // namespace keel
