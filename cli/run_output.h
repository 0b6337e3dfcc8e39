#pragma once
// What `keel run` and `keel resume` print on stdout when the run is over.
// Free functions; call from one thread.

#include "engine/runner.h"
#include "engine/workflow.h"

namespace keel::cli {

// Without `json`: "run ID STATUS in SECS (DONE/TOTAL nodes)", one
// "  node = JSON" line per sink output, then the error of a failed run or a
// warning per failed optional node of a degraded one. With `json`: one JSON
// object (run_id, workflow, status, duration_s, outputs, nodes, error).
// `seconds` is how long this command ran the workflow.
void PrintRunReport(const RunReport& report, const WorkflowSpec& workflow, double seconds,
                    bool json);

}  // namespace keel::cli
