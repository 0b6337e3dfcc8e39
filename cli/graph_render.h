#pragma once
// Renders a workflow's DAG as Graphviz DOT or a Mermaid flowchart, optionally
// coloured by the status each node reached in a run. Free functions; safe
// from any thread.

#include <string>
#include <unordered_map>

#include "engine/node_status.h"
#include "engine/workflow.h"

namespace keel::cli {

// Node name -> status in a run; nodes missing from it are drawn as pending.
using NodeStatuses = std::unordered_map<std::string, NodeStatus>;

// `statuses` may be null: the plain DAG, without colours.
std::string RenderDot(const WorkflowSpec& workflow, const NodeStatuses* statuses);
std::string RenderMermaid(const WorkflowSpec& workflow, const NodeStatuses* statuses);

}  // namespace keel::cli
