#include "views/run_detail.h"

#include <algorithm>

#include "views/event_json.h"
#include "views/format.h"
#include "views/run_outline.h"
#include "views/run_status.h"
#include "views/script_versions_view.h"

namespace keel {

void SortByExecution(std::vector<NodeRecord>* nodes) {
  auto key = [](const NodeRecord& n) {
    if (n.started_at > 0) return n.started_at;
    return n.finished_at > 0 ? n.finished_at : 1e300;
  };
  std::stable_sort(nodes->begin(), nodes->end(),
                   [&](const NodeRecord& a, const NodeRecord& b) { return key(a) < key(b); });
}

std::string NodeStatusLabel(const NodeRecord& node, const std::string& run_label) {
  if (node.status == NodeStatus::kRunning && run_label == "interrupted") return "interrupted";
  return std::string(NodeStatusName(node.status));
}

std::optional<double> NodeSeconds(const NodeRecord& node) {
  if (node.started_at <= 0 || node.finished_at <= 0) return std::nullopt;
  return std::max(0.0, node.finished_at - node.started_at);
}

Result<RunDetail> ReadRunDetail(Store& store, const std::string& id, bool events, bool items,
                                const NodeOrder& order, double now) {
  auto run = store.GetRun(id);
  if (!run.ok()) return run.status();
  // Without items and events, the store leaves the items out (views/run_outline.h).
  Result<std::vector<NodeRecord>> nodes = std::vector<NodeRecord>();
  Result<std::vector<EventRecord>> recorded_events = std::vector<EventRecord>();
  std::map<std::string, ItemTally> tallies;
  Result<bool> outlined = false;
  if (!items && !events) {
    outlined = ReadRunOutline(store, run->id, &*nodes, &*recorded_events, &tallies);
    if (!outlined.ok()) return outlined.status();
  }
  if (!*outlined) {
    nodes = store.GetNodes(run->id);
    if (!nodes.ok()) return nodes.status();
    recorded_events = store.GetEvents(run->id);
    if (!recorded_events.ok()) return recorded_events.status();
    tallies = TallyItems(*nodes, *recorded_events);
  }
  auto versions = store.GetScriptVersions(run->id);
  if (!versions.ok()) return versions.status();
  ScriptVersion latest;
  if (versions->empty()) {
    latest.script_path = run->script_path;
    latest.script_sha256 = run->script_sha256;
    latest.script_text = run->script_text;
  } else {
    latest = versions->back();
  }

  RunDetail detail;
  detail.label = RunStatusLabel(*run, now);
  detail.seconds = RunSeconds(*run, detail.label, now);
  detail.active = ActiveSeconds(*run, detail.label, now);
  detail.items = std::move(tallies);
  if (order) {
    detail.nodes = order(*run, latest, std::move(*nodes));
  } else {
    detail.nodes = std::move(*nodes);
    SortByExecution(&detail.nodes);
  }
  ArrangeInnerNodes(&detail.nodes, items);
  detail.policy = CountPolicyEvents(*recorded_events);
  detail.llm = SumLlmUsage(*recorded_events);
  detail.escalations = ReadEscalations(*recorded_events);
  detail.events = std::move(*recorded_events);
  detail.show_events = events;
  detail.versions = std::move(*versions);
  detail.run = std::move(*run);
  return detail;
}

void WriteRunDetailJson(JsonOut* out_ptr, const RunDetail& detail) {
  JsonOut& out = *out_ptr;
  const RunRecord& run = detail.run;
  out.BeginObject();
  out.Key("run_id").String(run.id);
  out.Key("workflow").String(run.workflow);
  out.Key("status").String(detail.label);
  out.Key("script_path").String(run.script_path);
  out.Key("script_sha256").String(run.script_sha256);
  out.Key("params").Raw(run.params_json);
  out.Key("started_at").String(FormatIsoUtc(run.created_at));
  out.Key("finished_at").TimeOrNull(run.finished_at);
  out.Key("duration_s").Seconds(detail.seconds);
  out.Key("active_s").Seconds(detail.active);
  out.Key("error").StringOrNull(run.error);
  out.Key("escalations");
  WriteEscalationsJson(&out, detail.escalations);
  WriteRunConfigJson(&out, run, detail.versions, detail.nodes);
  out.Key("usage");
  WriteUsageJson(&out, detail.llm.total);
  out.Key("nodes");
  out.BeginArray();
  for (const NodeRecord& node : detail.nodes) {
    out.BeginObject();
    out.Key("node").String(node.node);
    out.Key("status").String(NodeStatusLabel(node, detail.label));
    out.Key("attempts").Int(node.attempts);
    WriteNodeVersionJson(&out, node);
    out.Key("duration_s").Seconds(NodeSeconds(node));
    out.Key("error_kind")
        .StringOrNull(node.error_kind == ErrorKind::kNone ? "" : ErrorKindName(node.error_kind));
    out.Key("error").StringOrNull(node.error_message);
    out.Key("output").Raw(node.status == NodeStatus::kWaiting ? std::nullopt : node.output_json);
    if (node.status == NodeStatus::kWaiting && node.output_json) {
      out.Key("waiting_for").Raw(node.output_json);  // {"signal": NAME} and/or {"due": T}
    }
    out.Key("events");
    out.BeginObject();
    for (const auto& [kind, count] : ByNode(detail.policy, node.node)) {
      out.Key(kind).Int(count);
    }
    out.EndObject();
    out.Key("usage");
    WriteUsageJson(&out, ByNode(detail.llm.by_node, node.node));
    if (auto tally = detail.items.find(node.node); tally != detail.items.end()) {
      out.Key("items");
      out.BeginObject();
      out.Key("total").Int(static_cast<int64_t>(tally->second.total));
      out.Key("succeeded").Int(static_cast<int64_t>(tally->second.succeeded));
      out.Key("failed").Int(static_cast<int64_t>(tally->second.failed));
      out.Key("cancelled").Int(static_cast<int64_t>(tally->second.cancelled));
      out.Key("running").Int(static_cast<int64_t>(tally->second.running));
      out.EndObject();
    }
    out.EndObject();
  }
  out.EndArray();
  if (detail.show_events) {
    out.Key("events");
    out.BeginArray();
    for (const EventRecord& event : detail.events) WriteEventJson(&out, event);
    out.EndArray();
  }
  out.EndObject();
}

}  // namespace keel
