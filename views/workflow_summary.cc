#include "views/workflow_summary.h"

namespace keel {

void WriteWorkflowSummaryJson(JsonOut* out, const std::string& file, const WorkflowSpec& workflow) {
  out->BeginObject();
  out->Key("file").String(file);
  out->Key("workflow").String(workflow.name);
  out->Key("params").Raw(workflow.params ? std::optional<std::string>(*workflow.params)
                                          : std::optional<std::string>("{}"));
  out->Key("nodes").Int(static_cast<int64_t>(workflow.nodes.size()));
  out->EndObject();
}

void WriteWorkflowErrorJson(JsonOut* out, const std::string& file, const std::string& error) {
  out->BeginObject();
  out->Key("file").String(file);
  out->Key("error").String(error);
  out->EndObject();
}

}  // namespace keel
