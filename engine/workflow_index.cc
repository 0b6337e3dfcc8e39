#include "engine/workflow_index.h"

namespace keel {

WorkflowIndex::WorkflowIndex(const WorkflowSpec& workflow) {
  for (size_t i = 0; i < workflow.nodes.size(); ++i) {
    // The first of two nodes of one name, as WorkflowSpec::Find finds it.
    positions_.emplace(workflow.nodes[i].name, static_cast<int>(i));
    for (const std::string& dep : workflow.nodes[i].after) depended_on_.insert(dep);
  }
}

int WorkflowIndex::Find(const std::string& name) const {
  auto it = positions_.find(name);
  return it == positions_.end() ? -1 : it->second;
}

bool WorkflowIndex::IsLeaf(const std::string& name) const {
  return positions_.count(name) > 0 && depended_on_.count(name) == 0;
}

}  // namespace keel
