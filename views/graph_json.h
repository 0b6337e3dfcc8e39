#pragma once
// A workflow's DAG as JSON, for `keel graph --format json` and GET
// /api/v1/runs/ID/graph (the service runs the former; one serializer):
//   {"workflow": NAME, "nodes": [{"name", "kind", "status"}...],
//    "edges": [{"from": DEP, "to": NODE}...]}
// "status" is the node's in the run ("pending" when not reached), absent
// for a plain workflow; map items collapse into their map, whose kind
// carries the counts and which gains "items": {"total", "succeeded",
// "failed", "running", "cancelled"} in a run. A call or loop stays one node
// too, whose "inner" counts the nodes it ran so far the same way. A running node whose attempts
// are not simply running gains "state" (retrying, backing_off,
// breaker_open: views/live_state.h) and "until" (ISO 8601, or null).
// Free function; any thread.

#include <string>
#include <unordered_map>

#include "engine/node_status.h"
#include "engine/workflow.h"
#include "views/item_view.h"
#include "views/json_out.h"
#include "views/live_state.h"

namespace keel {

// What a run adds to its graph; each part may be null (left out).
struct GraphRun {
  const std::unordered_map<std::string, NodeStatus>* statuses = nullptr;  // "status"
  const std::map<std::string, ItemTally>* items = nullptr;  // maps' "items"
  const std::map<std::string, ItemTally>* inner = nullptr;  // calls' and loops' "inner"
  const std::map<std::string, LiveState>* live = nullptr;   // "state", "until"
};

void WriteGraphJson(JsonOut* out, const WorkflowSpec& workflow, const GraphRun& run = {});

}  // namespace keel
