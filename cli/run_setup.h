#pragma once
// What `keel resume` and `keel fork` share with `keel run`: taking up a
// recorded run's configuration, the nodes `--from NODE` runs again, and
// running a workflow with progress, interrupt handling and the final report.
// Free functions; call from the main thread.

#include <functional>
#include <string>
#include <unordered_set>
#include <vector>

#include "cli/progress.h"
#include "cli/run_config.h"
#include "engine/runner.h"
#include "engine/store.h"

namespace keel::cli {

// `run`'s recorded configuration with what the command line gives instead
// (OverrideConfig). Fails when the recorded one cannot be read.
Result<RunConfig> RecordedConfig(const RunRecord& run, const LlmArgs& llm, int max_inflight);

// The nodes `--from from` runs again in `workflow` (NodesFrom): empty when
// `from` is. Fails (kPermanent) naming the run and, when it is a near miss,
// the node meant.
Result<std::unordered_set<std::string>> RerunSet(const WorkflowSpec& workflow,
                                                 const std::string& from,
                                                 const std::string& run_id);

// Why `keel resume RUN -p ...` is refused.
std::string ResumeKeepsParams(const std::string& run_id);

// Runs the workflow through `start` as `keel run` and `keel resume` do:
// progress display, interrupts recorded, the report printed. Returns the
// exit code. `db_flag` is the command's --db ("" when not given), for the
// commands the report suggests. (Defined in run_command.cc.)
int ExecuteRun(const WorkflowSpec& workflow, Store* store, ProgressOptions progress_options,
               bool json, const std::string& db_flag,
               const std::function<Result<RunReport>(Progress*)>& start);

}  // namespace keel::cli
