#include "views/graph_json.h"

namespace keel {

namespace {

void WriteTally(JsonOut* out, const ItemTally& tally) {
  out->BeginObject();
  out->Key("total").Int(static_cast<int64_t>(tally.total));
  out->Key("succeeded").Int(static_cast<int64_t>(tally.succeeded));
  out->Key("failed").Int(static_cast<int64_t>(tally.failed));
  out->Key("running").Int(static_cast<int64_t>(tally.running));
  out->Key("cancelled").Int(static_cast<int64_t>(tally.cancelled));
  out->EndObject();
}

}  // namespace

void WriteGraphJson(JsonOut* out, const WorkflowSpec& workflow, const GraphRun& run) {
  const auto* statuses = run.statuses;
  const auto* tallies = run.items;
  const auto* live = run.live;
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
    if (run.inner != nullptr) {
      auto found = run.inner->find(node.name);
      if (found != run.inner->end()) {
        out->Key("inner");
        WriteTally(out, found->second);
      }
    }
    if (live != nullptr) {
      auto it = live->find(node.name);
      if (it != live->end() && it->second.state != "running") {
        out->Key("state").String(it->second.state);
        out->Key("until").TimeOrNull(it->second.until);
      }
    }
    if (tallies != nullptr && (node.kind == "map" || node.kind.starts_with("map, "))) {
      auto found = tallies->find(node.name);
      ItemTally tally = found == tallies->end() ? ItemTally{} : found->second;
      out->Key("items");
      WriteTally(out, tally);
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
