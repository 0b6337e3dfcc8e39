#pragma once
// WorkflowIndex: a workflow's nodes by name and which of them others depend
// on, read once from its `after` lists, for callers that ask per node and
// would otherwise read every node each time (a worker committing the nodes
// of a run of thousands, store/postgres/pg_node_queue.h).
//
// Immutable once built; any thread may read it. It describes the workflow
// as it was when built, and must not outlive it.

#include <string>
#include <unordered_map>
#include <unordered_set>

#include "engine/workflow.h"

namespace keel {

class WorkflowIndex {
 public:
  explicit WorkflowIndex(const WorkflowSpec& workflow);

  // Index of the node called `name` in workflow.nodes, or -1.
  int Find(const std::string& name) const;
  // Whether `name` is a node of the workflow that no node depends on.
  bool IsLeaf(const std::string& name) const;

 private:
  std::unordered_map<std::string, int> positions_;
  std::unordered_set<std::string> depended_on_;
};

}  // namespace keel
