// `keel show`: one run in detail — its header, a table of its nodes with
// what the policy stack did to each and what their LLM calls spent, and,
// with --events, its event log.

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <unordered_map>

#include "cli/commands.h"
#include "cli/db.h"
#include "cli/exit_codes.h"
#include "views/item_view.h"
#include "views/llm_usage.h"
#include "views/policy_events.h"
#include "cli/recorded_script.h"
#include "views/script_versions_view.h"
#include "cli/table.h"
#include "cli/wait_hint.h"
#include "engine/clock.h"
#include "views/event_json.h"
#include "views/format.h"
#include "views/json_out.h"

namespace keel::cli {
namespace {

std::optional<double> NodeSeconds(const NodeRecord& node) {
  if (node.started_at <= 0 || node.finished_at <= 0) return std::nullopt;
  return std::max(0.0, node.finished_at - node.started_at);
}

// `text` with every line after the first indented by `width` spaces, so that
// a Lua traceback lines up under the header's values.
std::string IndentFollowing(const std::string& text, size_t width) {
  std::string out;
  for (char c : text) {
    out += c;
    if (c == '\n') out.append(width, ' ');
  }
  return out;
}

// "kind: message", first line only: a Lua traceback is in --json.
std::string NodeError(const NodeRecord& node) {
  if (node.error_kind == ErrorKind::kNone && node.error_message.empty()) return "";
  return FirstLine(std::string(ErrorKindName(node.error_kind)) + ": " + node.error_message);
}

// Nodes in the order they ran, which respects the workflow's dependencies:
// by start time, and nodes that never started (skipped, cancelled) by when
// they were decided.
void SortByExecution(std::vector<NodeRecord>* nodes) {
  auto key = [](const NodeRecord& n) {
    if (n.started_at > 0) return n.started_at;
    return n.finished_at > 0 ? n.finished_at : 1e300;
  };
  std::stable_sort(nodes->begin(), nodes->end(),
                   [&](const NodeRecord& a, const NodeRecord& b) { return key(a) < key(b); });
}

// The run's nodes in workflow order, with a pending entry for every node the
// run has not reached. The order comes from the script recorded with the
// run; when that no longer loads, the nodes recorded so far are returned in
// the order they ran.
std::vector<NodeRecord> InWorkflowOrder(const RunRecord& run, const ScriptVersion& version,
                                        std::vector<NodeRecord> recorded) {
  auto script = LoadRecordedScript(version);
  const WorkflowSpec* workflow = script.ok() ? (*script)->Find(run.workflow) : nullptr;
  if (workflow == nullptr) {
    SortByExecution(&recorded);
    return recorded;
  }
  std::unordered_map<std::string, NodeRecord*> by_name;
  for (NodeRecord& node : recorded) by_name[node.node] = &node;
  std::vector<NodeRecord> ordered;
  for (const NodeSpec& spec : workflow->nodes) {
    auto it = by_name.find(spec.name);
    if (it == by_name.end()) {
      NodeRecord pending;
      pending.run_id = run.id;
      pending.node = spec.name;
      ordered.push_back(std::move(pending));
      continue;
    }
    ordered.push_back(std::move(*it->second));
    by_name.erase(it);
  }
  for (NodeRecord& node : recorded) {
    if (by_name.count(node.node)) ordered.push_back(std::move(node));
  }
  return ordered;
}

// The status shown for `node` of a run shown as `run_label`: a node recorded
// running under a run whose process is gone is not running any more, and
// will run again on resume.
std::string NodeStatusLabel(const NodeRecord& node, const std::string& run_label) {
  if (node.status == NodeStatus::kRunning && run_label == "interrupted") return "interrupted";
  return std::string(NodeStatusName(node.status));
}

// The run's nodes in workflow order, and its events.
struct RunDetail {
  const RunRecord& run;
  std::string label;              // RunStatusLabel
  std::optional<double> seconds;  // elapsed: RunSeconds
  std::optional<double> active;   // ActiveSeconds
  std::vector<NodeRecord> nodes;
  std::map<std::string, PolicyCounts> policy;  // by node
  RunLlmUsage llm;
  std::vector<EventRecord> events;
  bool show_events;  // --events
  std::vector<ScriptVersion> versions;
  std::map<std::string, ItemTally> items;  // by map
};

// The entry of `by_node` for `node`, or an empty value when it has none.
template <typename Value>
const Value& ByNode(const std::map<std::string, Value>& by_node, const std::string& node) {
  static const Value kNone{};
  auto it = by_node.find(node);
  return it == by_node.end() ? kNone : it->second;
}

void PrintJson(const RunDetail& detail) {
  const RunRecord& run = detail.run;
  JsonOut out;
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
  out.Print(stdout);
}

void PrintText(const RunDetail& detail) {
  const RunRecord& run = detail.run;
  std::printf("run       %s\n", run.id.c_str());
  std::printf("workflow  %s\n", run.workflow.c_str());
  std::printf("status    %s\n", detail.label.c_str());
  std::printf("script    %s\n", run.script_path.c_str());
  PrintForkedFrom(run);
  std::printf("params    %s\n", run.params_json.c_str());
  std::printf("started   %s\n", FormatLocalTime(run.created_at).c_str());
  if (detail.seconds) {
    std::printf("duration  %s active, %s elapsed\n", FormatDuration(*detail.active).c_str(),
                FormatDuration(*detail.seconds).c_str());
  } else {
    std::printf("duration  -\n");
  }
  const LlmTotals& total = detail.llm.total;
  const bool llm = total.calls > 0;
  if (llm) {
    std::printf("tokens    %s\n", DescribeTokens(total.usage).c_str());
    std::string queued = total.queued >= 0.001 ? ", plus " + FormatDuration(total.queued) +
                                                     " queued behind provider limits"
                                               : "";
    std::printf("llm calls %d, taking %s in all%s\n", total.calls,
                FormatDuration(total.seconds).c_str(), queued.c_str());
  }
  std::printf("error     %s\n", run.error.empty() ? "-" : IndentFollowing(run.error, 10).c_str());

  std::printf("\n");
  // The EVENTS column only when the policy stack did something worth a word.
  std::vector<std::string> described;
  bool policy = false;
  for (const NodeRecord& node : detail.nodes) {
    described.push_back(DescribePolicyEvents(ByNode(detail.policy, node.node)));
    policy = policy || !described.back().empty();
  }
  // TOKENS only when there were LLM calls, COST only when one was priced.
  const bool priced = total.usage.cost > 0;
  std::vector<std::string> header = {"NODE", "STATUS", "ATTEMPTS", "DURATION"};
  if (llm) header.push_back("TOKENS");
  if (priced) header.push_back("COST");
  if (policy) header.push_back("EVENTS");
  header.push_back("ERROR");
  Table table(std::move(header));
  for (size_t i = 0; i < detail.nodes.size(); ++i) {
    const NodeRecord& node = detail.nodes[i];
    std::string name = node.node;
    if (auto tally = detail.items.find(node.node); tally != detail.items.end()) {
      name += "  " + DescribeTally(tally->second);
    }
    std::vector<std::string> row = {std::move(name), NodeStatusLabel(node, detail.label),
                                    std::to_string(node.attempts),
                                    FormatDurationOrDash(NodeSeconds(node))};
    const LlmTotals& spent = ByNode(detail.llm.by_node, node.node);
    if (llm) row.push_back(spent.calls > 0 ? FormatCount(spent.usage.tokens()) : "-");
    if (priced) row.push_back(spent.usage.cost > 0 ? FormatCost(spent.usage.cost) : "-");
    if (policy) row.push_back(std::move(described[i]));
    row.push_back(node.status == NodeStatus::kWaiting && node.output_json
                      ? "waits for " + DescribeWait(*node.output_json, SystemClock()->WallNow())
                      : NodeError(node));
    table.AddRow(std::move(row));
  }
  table.Print(stdout);
  const int listed = static_cast<int>(detail.nodes.size());
  if (run.node_count > listed) {
    std::printf("(%d more nodes not reached)\n", run.node_count - listed);
  }
  PrintScriptVersions(run, detail.versions, detail.nodes);

  if (!detail.show_events) return;
  std::printf("\n");
  Table log({"seq", "time", "node", "kind", "data"});
  for (const EventRecord& event : detail.events) {
    std::string data = DescribeLlmCall(event);
    if (data.empty() && event.data_json != "{}") data = OneLine(event.data_json);
    log.AddRow({std::to_string(event.seq), FormatClockTime(event.ts),
                event.node.empty() ? "-" : event.node, event.kind, std::move(data)});
  }
  log.Print(stdout);
}

}  // namespace

int ShowCommand(const ShowArgs& args) {
  std::string db_path = ResolveDbPath(args.db);
  auto store = OpenDbIfExists(db_path);
  if (!store.ok()) return UsageError(store.status().message());
  if (*store == nullptr) return UsageError("no keel database at " + db_path);
  auto run = (*store)->GetRun(args.run_id);
  if (!run.ok()) return UsageError(run.status().message());
  auto nodes = (*store)->GetNodes(run->id);
  if (!nodes.ok()) return UsageError(nodes.status().message());
  auto events = (*store)->GetEvents(run->id);
  if (!events.ok()) return UsageError(events.status().message());
  auto versions = (*store)->GetScriptVersions(run->id);
  if (!versions.ok()) return UsageError(versions.status().message());
  ScriptVersion latest;
  if (versions->empty()) {
    latest.script_path = run->script_path;
    latest.script_sha256 = run->script_sha256;
    latest.script_text = run->script_text;
  } else {
    latest = versions->back();
  }

  double now = SystemClock()->WallNow();
  std::string label = RunStatusLabel(*run, now);
  std::optional<double> seconds = RunSeconds(*run, label, now);
  std::optional<double> active = ActiveSeconds(*run, label, now);
  auto items = TallyItems(*nodes, *events);
  std::vector<NodeRecord> ordered = InWorkflowOrder(*run, latest, std::move(*nodes));
  ArrangeInnerNodes(&ordered, args.items || args.json);
  RunDetail detail{.run = *run,
                   .label = std::move(label),
                   .seconds = seconds,
                   .active = active,
                   .nodes = std::move(ordered),
                   .policy = CountPolicyEvents(*events),
                   .llm = SumLlmUsage(*events),
                   .events = std::move(*events),
                   .show_events = args.events,
                   .versions = std::move(*versions),
                   .items = std::move(items)};
  if (args.json) {
    PrintJson(detail);
  } else {
    PrintText(detail);
  }
  return kExitSucceeded;
}

}  // namespace keel::cli
