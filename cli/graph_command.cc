// `keel graph`: prints a workflow's DAG, or a run's DAG coloured by status.

#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <memory>

#include "cli/commands.h"
#include "cli/db.h"
#include "cli/db_postgres.h"
#include "cli/exit_codes.h"
#include "cli/graph_render.h"
#include "views/item_view.h"
#include "cli/load_script.h"
#include "cli/recorded_script.h"
#include "engine/clock.h"
#include "views/graph_json.h"
#include "views/json_out.h"
#include "views/live_state.h"

namespace keel::cli {
namespace {

int Print(const WorkflowSpec& workflow, const std::string& format, const GraphRun& run = {}) {
  const NodeStatuses* statuses = run.statuses;
  std::string text;
  if (format == "json") {
    JsonOut out;
    WriteGraphJson(&out, workflow, run);
    text = out.Text() + "\n";
  } else {
    text = format == "mermaid" ? RenderMermaid(workflow, statuses) : RenderDot(workflow, statuses);
  }
  std::fwrite(text.data(), 1, text.size(), stdout);
  return kExitSucceeded;
}

// The live state of each running node of `drawn` (retrying, backing off,
// refused by an open breaker), from its events.
std::map<std::string, LiveState> LiveStates(const WorkflowSpec& drawn,
                                            const NodeStatuses& statuses,
                                            const std::vector<EventRecord>& events) {
  std::map<std::string, std::vector<EventRecord>> by_node;
  for (const NodeSpec& node : drawn.nodes) {
    auto it = statuses.find(node.name);
    if (it != statuses.end() && it->second == NodeStatus::kRunning) by_node[node.name];
  }
  if (by_node.empty()) return {};
  for (const EventRecord& event : events) {
    auto it = by_node.find(event.node);
    if (it != by_node.end()) it->second.push_back(event);
  }
  std::map<std::string, LiveState> live;
  double now = SystemClock()->WallNow();
  for (const auto& [node, node_events] : by_node) live[node] = NodeLiveState(node_events, now);
  return live;
}

bool LooksLikeFile(const std::string& target) {
  std::error_code ec;
  if (std::filesystem::exists(target, ec)) return true;
  return target.size() > 4 && target.compare(target.size() - 4, 4, ".lua") == 0;
}

}  // namespace

int GraphCommand(const GraphArgs& args) {
  if (LooksLikeFile(args.target)) {
    std::shared_ptr<LoadedScript> script = LoadScript(args.target);
    if (!script) return kExitUsage;
    return Print(script->main_workflow(), args.format);
  }

  std::string db_path = ResolveDbPath(args.db);
  auto store = OpenDbIfExists(db_path);
  if (!store.ok()) return UsageError(store.status().message());
  if (*store == nullptr) {
    return UsageError(
        fmt::format("'{}' is not a file, and there is no database at {} to look up runs",
                    args.target, DbName(db_path)));
  }
  auto run = (*store)->GetRun(args.target);
  if (!run.ok()) return UsageError(run.status().message());
  auto nodes = (*store)->GetNodes(run->id);
  if (!nodes.ok()) return UsageError(nodes.status().message());
  auto script = LoadRecordedScript(store->get(), *run);
  if (!script.ok()) {
    return UsageError(fmt::format("cannot draw run {}: its recorded script no longer loads:\n{}",
                                  run->id, script.status().message()));
  }
  const WorkflowSpec* workflow = (*script)->Find(run->workflow);
  if (workflow == nullptr) workflow = &(*script)->main_workflow();
  auto events = (*store)->GetEvents(run->id);
  if (!events.ok()) return UsageError(events.status().message());
  NodeStatuses statuses;
  for (const NodeRecord& node : *nodes) statuses[node.node] = node.status;
  std::map<std::string, ItemTally> tallies = TallyItems(*nodes, *events);
  // JSON (the dashboard's) keeps every call, loop and map one node, with
  // counts of what ran inside, unless --items asks for every node; DOT and
  // Mermaid draw the inner nodes.
  const bool json = args.format == "json";
  WorkflowSpec drawn =
      WithInnerNodes(*workflow, *nodes, tallies, args.items, /*inner=*/!json || args.items);
  std::map<std::string, LiveState> live = LiveStates(drawn, statuses, *events);
  std::map<std::string, ItemTally> inner = TallyInner(*workflow, *nodes);
  GraphRun run_view;
  run_view.statuses = &statuses;
  run_view.items = &tallies;
  run_view.live = &live;
  if (json) run_view.inner = &inner;
  return Print(drawn, args.format, run_view);
}

}  // namespace keel::cli
