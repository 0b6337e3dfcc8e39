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
};

struct RunReport {
  std::string run_id;
  RunStatus status = RunStatus::kFailed;
  std::string error;
  // Outputs of the sink nodes (no dependents) that have one, in spec order.
  std::vector<std::pair<std::string, JsonText>> outputs;
  RunOutcome outcome;
  bool script_changed = false;  // resume: the script's hash differs from the recorded one
  int restored = 0;             // resume: nodes kept from before
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
  // recorded finished no longer exists in the workflow.
  Result<RunReport> Resume(const RunRecord& run, const WorkflowSpec& workflow,
                           const ScriptInfo& script, const ExecutorOptions& options);

  // A fresh, time-sortable run id such as "261123-175206-a3f9".
  std::string NewRunId();

 private:
  Result<RunReport> Execute(const WorkflowSpec& workflow, const std::string& run_id,
                            JsonText params, const std::unordered_map<std::string, NodeRecord>& restored,
                            const ExecutorOptions& options, const RunHistory& history);

  Clock* clock_;
  Store* store_;
  Observer* observer_;
  Executor executor_;
};

}  // namespace keel
