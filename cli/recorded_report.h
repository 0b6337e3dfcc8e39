#pragma once
// The report of a run that is already over, rebuilt from the store, so that
// `keel resume --json` of a finished run prints the object `keel run --json`
// printed for it. Call from one thread.

#include <memory>

#include "engine/runner.h"
#include "engine/status.h"
#include "engine/store.h"
#include "engine/workflow.h"
#include "scripts/workflow_loader.h"

namespace keel::cli {

// A recorded run's report and the workflow it is indexed by.
struct RecordedReport {
  RunReport report;
  // The workflow from the script recorded with the run; when that no longer
  // loads, its recorded nodes in the order they were recorded, none of them
  // depending on another.
  std::shared_ptr<LoadedScript> script;  // keeps `workflow` alive; may be null
  WorkflowSpec own;                      // used when `script` is null
  const WorkflowSpec* workflow = nullptr;
  double seconds = 0;  // how long it took, from the run's timestamps
};

// Reads `run`'s nodes from `store` and builds its report: status, error,
// per-node results and attempts, and the outputs of its sinks. Fails with
// the store's error when its nodes cannot be read.
Result<std::unique_ptr<RecordedReport>> ReadRecordedReport(Store* store, const RunRecord& run);

}  // namespace keel::cli
