#pragma once
// A workflow file as the start page lists it, printed by `keel validate
// --json` and listed by GET /api/v1/workflows (the service runs the former
// for each file; one serializer):
//   {"file": "dir/x.lua", "workflow": NAME, "params": {defaults}, "nodes": N}
// and, for a file that does not load, {"file": "dir/x.lua", "error": TEXT}.
// Free functions; any thread.

#include <string>

#include "engine/workflow.h"
#include "views/json_out.h"

namespace keel {

void WriteWorkflowSummaryJson(JsonOut* out, const std::string& file, const WorkflowSpec& workflow);

void WriteWorkflowErrorJson(JsonOut* out, const std::string& file, const std::string& error);

}  // namespace keel
