#pragma once
// RunDetail: one run as `keel show` and GET /api/v1/runs/ID present it — its
// record, its nodes with what the policy stack did to each and what their
// LLM calls spent, map item counts, script versions and, when asked, its
// events — and its JSON (one serializer for both). Free functions over
// values the caller owns; any thread.

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "engine/store.h"
#include "views/escalation_view.h"
#include "views/item_view.h"
#include "views/json_out.h"
#include "views/llm_usage.h"
#include "views/policy_events.h"

namespace keel {

struct RunDetail {
  RunRecord run;
  std::string label;              // RunStatusLabel
  std::optional<double> seconds;  // elapsed: RunSeconds
  std::optional<double> active;   // ActiveSeconds
  std::vector<NodeRecord> nodes;
  std::map<std::string, PolicyCounts> policy;  // by node
  RunLlmUsage llm;
  std::vector<EventRecord> events;
  bool show_events = false;  // events are part of the output
  std::vector<ScriptVersion> versions;
  std::map<std::string, ItemTally> items;  // by map
  std::vector<EscalationSummary> escalations;  // what the run's failures started, oldest first
};

// Puts a run's recorded nodes in the order they are shown. `keel show`
// loads the run's script for its workflow order (with pending entries for
// nodes not reached); without one, nodes come in the order they ran.
using NodeOrder = std::function<std::vector<NodeRecord>(
    const RunRecord& run, const ScriptVersion& latest, std::vector<NodeRecord> recorded)>;

// Nodes by start time, and nodes that never started (skipped, cancelled) by
// when they were decided: an order that respects the workflow's
// dependencies.
void SortByExecution(std::vector<NodeRecord>* nodes);

// Reads run `id` (exact or a unique prefix) and everything RunDetail holds.
// `items`: list map items one by one (always so for JSON). `order` may be
// null (SortByExecution). Fails with the store's error (no such run, an
// ambiguous prefix, the database unreadable).
Result<RunDetail> ReadRunDetail(Store& store, const std::string& id, bool events, bool items,
                                const NodeOrder& order, double now);

// The status shown for `node` of a run shown as `run_label`: a node recorded
// running under a run whose process is gone is not running any more.
std::string NodeStatusLabel(const NodeRecord& node, const std::string& run_label);

// How long `node` ran; nullopt when it did not finish.
std::optional<double> NodeSeconds(const NodeRecord& node);

// The entry of `by_node` for `node`, or an empty value when it has none.
template <typename Value>
const Value& ByNode(const std::map<std::string, Value>& by_node, const std::string& node) {
  static const Value kNone{};
  auto it = by_node.find(node);
  return it == by_node.end() ? kNone : it->second;
}

// The run as one JSON object (`keel show --json`).
void WriteRunDetailJson(JsonOut* out, const RunDetail& detail);

}  // namespace keel
