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
#include "cli/db_postgres.h"
#include "cli/exit_codes.h"
#include "views/item_view.h"
#include "views/llm_usage.h"
#include "views/policy_events.h"
#include "cli/recorded_script.h"
#include "views/script_versions_view.h"
#include "cli/table.h"
#include "cli/wait_hint.h"
#include "engine/clock.h"
#include "engine/event_severity.h"
#include "views/run_detail.h"
#include "views/format.h"
#include "views/json_out.h"

namespace keel::cli {
namespace {

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
  for (const EscalationSummary& escalation : detail.escalations) {
    std::string line = escalation.workflow + " (on_failure#" + std::to_string(escalation.number) +
                       "): " + escalation.status;
    if (!escalation.error.empty()) line += ": " + FirstLine(escalation.error);
    std::printf("escalated %s\n", line.c_str());
  }

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
  Table log({"seq", "time", "node", "kind", "severity", "data"});
  for (const EventRecord& event : detail.events) {
    std::string data = DescribeLlmCall(event);
    if (data.empty() && event.data_json != "{}") data = OneLine(event.data_json);
    log.AddRow({std::to_string(event.seq), FormatClockTime(event.ts),
                event.node.empty() ? "-" : event.node, event.kind,
                std::string(SeverityName(EventSeverity(event.kind, event.data_json))),
                std::move(data)});
  }
  log.Print(stdout);
}

}  // namespace

int ShowCommand(const ShowArgs& args) {
  if (!args.node.empty()) return ShowNodeCommand(args);
  std::string db_path = ResolveDbPath(args.db);
  auto store = OpenDbIfExists(db_path);
  if (!store.ok()) return UsageError(store.status().message());
  if (*store == nullptr) return UsageError("no keel database at " + DbName(db_path));
  auto detail = ReadRunDetail(**store, args.run_id, args.events, args.items || args.json,
                              InWorkflowOrder, SystemClock()->WallNow());
  if (!detail.ok()) return UsageError(detail.status().message());
  if (args.json) {
    JsonOut out;
    WriteRunDetailJson(&out, *detail);
    out.Print(stdout);
  } else {
    PrintText(*detail);
  }
  return kExitSucceeded;
}

}  // namespace keel::cli
