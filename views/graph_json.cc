#include "views/graph_json.h"

namespace keel {

void WriteGraphJson(JsonOut* out, const WorkflowSpec& workflow,
                    const std::unordered_map<std::string, NodeStatus>* statuses) {
  out->BeginObject();
  out->Key("workflow").String(workflow.name);
  out->Key("nodes");
  out->BeginArray();
  for (const NodeSpec& node : workflow.nodes) {
    out->BeginObject();
    out->Key("name").String(node.name);
    out->Key("kind").String(node.kind);
    if (statuses != nullptr) {
      auto it = statuses->find(node.name);
      out->Key("status").String(it == statuses->end() ? "pending" : NodeStatusName(it->second));
    }
    out->EndObject();
  }
  out->EndArray();
  out->Key("edges");
  out->BeginArray();
  for (const NodeSpec& node : workflow.nodes) {
    for (const std::string& dep : node.after) {
      out->BeginObject();
      out->Key("from").String(dep);
      out->Key("to").String(node.name);
      out->EndObject();
    }
  }
  out->EndArray();
  out->EndObject();
}

}  // namespace keel
