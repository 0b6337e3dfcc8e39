// `keel show`: one run in detail — its header, a table of its nodes and,
// with --events, its event log.

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <unordered_map>

#include "cli/commands.h"
#include "cli/db.h"
#include "cli/exit_codes.h"
#include "cli/format.h"
#include "cli/json_out.h"
#include "cli/recorded_script.h"
#include "cli/table.h"
#include "engine/clock.h"

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
std::vector<NodeRecord> InWorkflowOrder(const RunRecord& run, std::vector<NodeRecord> recorded) {
  auto script = LoadRecordedScript(run);
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

void PrintJson(const RunRecord& run, const std::string& label, std::optional<double> seconds,
               const std::vector<NodeRecord>& nodes, const std::vector<EventRecord>* events) {
  JsonOut out;
  out.BeginObject();
  out.Key("run_id");
  out.String(run.id);
  out.Key("workflow");
  out.String(run.workflow);
  out.Key("status");
  out.String(label);
  out.Key("script_path");
  out.String(run.script_path);
  out.Key("script_sha256");
  out.String(run.script_sha256);
  out.Key("params");
  out.Raw(run.params_json);
  out.Key("started_at");
  out.String(FormatIsoUtc(run.created_at));
  out.Key("finished_at");
  out.StringOrNull(run.finished_at > 0 ? FormatIsoUtc(run.finished_at) : "");
  out.Key("duration_s");
  out.Seconds(seconds);
  out.Key("error");
  out.StringOrNull(run.error);
  out.Key("nodes");
  out.BeginArray();
  for (const NodeRecord& node : nodes) {
    out.BeginObject();
    out.Key("node");
    out.String(node.node);
    out.Key("status");
    out.String(NodeStatusName(node.status));
    out.Key("attempts");
    out.Int(node.attempts);
    out.Key("duration_s");
    out.Seconds(NodeSeconds(node));
    out.Key("error_kind");
    out.StringOrNull(node.error_kind == ErrorKind::kNone ? "" : ErrorKindName(node.error_kind));
    out.Key("error");
    out.StringOrNull(node.error_message);
    out.Key("output");
    out.Raw(node.output_json);
    out.EndObject();
  }
  out.EndArray();
  if (events != nullptr) {
    out.Key("events");
    out.BeginArray();
    for (const EventRecord& event : *events) {
      out.BeginObject();
      out.Key("seq");
      out.Int(event.seq);
      out.Key("ts");
      out.String(FormatIsoUtc(event.ts));
      out.Key("node");
      out.StringOrNull(event.node);
      out.Key("kind");
      out.String(event.kind);
      out.Key("data");
      out.Raw(event.data_json);
      out.EndObject();
    }
    out.EndArray();
  }
  out.EndObject();
  out.Print(stdout);
}

void PrintText(const RunRecord& run, const std::string& label, std::optional<double> seconds,
               const std::vector<NodeRecord>& nodes, const std::vector<EventRecord>* events) {
  std::printf("run       %s\n", run.id.c_str());
  std::printf("workflow  %s\n", run.workflow.c_str());
  std::printf("status    %s\n", label.c_str());
  std::printf("script    %s\n", run.script_path.c_str());
  std::printf("params    %s\n", run.params_json.c_str());
  std::printf("started   %s\n", FormatLocalTime(run.created_at).c_str());
  std::printf("duration  %s\n", seconds ? FormatDuration(*seconds).c_str() : "-");
  std::printf("error     %s\n", run.error.empty() ? "-" : IndentFollowing(run.error, 10).c_str());

  std::printf("\n");
  Table table({"NODE", "STATUS", "ATTEMPTS", "DURATION", "ERROR"});
  for (const NodeRecord& node : nodes) {
    auto took = NodeSeconds(node);
    table.AddRow({node.node, std::string(NodeStatusName(node.status)),
                  std::to_string(node.attempts), took ? FormatDuration(*took) : "-",
                  NodeError(node)});
  }
  table.Print(stdout);
  if (run.node_count > static_cast<int>(nodes.size())) {
    std::printf("(%d more nodes not reached)\n", run.node_count - static_cast<int>(nodes.size()));
  }

  if (events == nullptr) return;
  std::printf("\n");
  Table log({"seq", "time", "node", "kind", "data"});
  for (const EventRecord& event : *events) {
    log.AddRow({std::to_string(event.seq), FormatClockTime(event.ts),
                event.node.empty() ? "-" : event.node, event.kind,
                event.data_json == "{}" ? "" : OneLine(event.data_json)});
  }
  log.Print(stdout);
}

}  // namespace

int ShowCommand(const ShowArgs& args) {
  std::string db_path = ResolveDbPath(args.db);
  auto store = OpenDb(db_path, {});
  if (!store.ok()) {
    PrintError(store.status().message());
    return kExitUsage;
  }
  auto run = (*store)->GetRun(args.run_id);
  if (!run.ok()) {
    PrintError(run.status().message());
    return kExitUsage;
  }
  auto nodes = (*store)->GetNodes(run->id);
  if (!nodes.ok()) {
    PrintError(nodes.status().message());
    return kExitUsage;
  }
  std::vector<NodeRecord> ordered = InWorkflowOrder(*run, std::move(*nodes));
  std::optional<std::vector<EventRecord>> events;
  if (args.events) {
    auto got = (*store)->GetEvents(run->id);
    if (!got.ok()) {
      PrintError(got.status().message());
      return kExitUsage;
    }
    events = std::move(*got);
  }

  double now = SystemClock()->WallNow();
  std::string label = RunStatusLabel(*run, now);
  std::optional<double> seconds = RunSeconds(*run, label, now);
  const std::vector<EventRecord>* log = events ? &*events : nullptr;
  if (args.json) {
    PrintJson(*run, label, seconds, ordered, log);
  } else {
    PrintText(*run, label, seconds, ordered, log);
  }
  return kExitSucceeded;
}

}  // namespace keel::cli
