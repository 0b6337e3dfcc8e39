#pragma once
// What `keel run` and `keel resume` print on stdout when the run is over.
// Free functions; call from one thread.

#include "views/llm_usage.h"
#include "engine/runner.h"
#include "engine/workflow.h"

namespace keel::cli {

// Without `json`: "run ID STATUS in SECS (DONE/TOTAL nodes)", one
// "  node = JSON" line per sink output, then the error of a failed run or a
// warning per failed optional node of a degraded one; and, when the run made
// LLM calls, "tokens: ..." on stderr. With `json`: one JSON object (run_id,
// workflow, status, duration_s, outputs, nodes, error, usage).
// `seconds` is how long this command ran the workflow; `usage` is what the
// run's LLM calls spent, earlier attempts included.
void PrintRunReport(const RunReport& report, const WorkflowSpec& workflow, double seconds,
                    const LlmTotals& usage, bool json);

}  // namespace keel::cli
