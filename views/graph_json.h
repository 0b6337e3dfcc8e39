#pragma once
// A workflow's DAG as JSON, for `keel graph --format json` and GET
// /api/v1/runs/ID/graph (the service runs the former; one serializer):
//   {"workflow": NAME, "nodes": [{"name", "kind", "status"}...],
//    "edges": [{"from": DEP, "to": NODE}...]}
// "status" is the node's in the run ("pending" when not reached), absent
// for a plain workflow; map items collapse into their map, whose kind
// carries the counts and which gains "items": {"total", "succeeded",
// "failed", "running", "cancelled"} in a run. A running node whose attempts
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

// `statuses` (node name -> status) may be null: no statuses. `tallies`
// (map name -> its items) may be null: no "items". `live` (node name -> its
// live state) may be null: no "state".
void WriteGraphJson(JsonOut* out, const WorkflowSpec& workflow,
                    const std::unordered_map<std::string, NodeStatus>* statuses,
                    const std::map<std::string, ItemTally>* tallies = nullptr,
                    const std::map<std::string, LiveState>* live = nullptr);

}  // namespace keel
