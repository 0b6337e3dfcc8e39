// `keel graph`: prints a workflow's DAG, or a run's DAG coloured by status.

#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <memory>

#include "cli/commands.h"
#include "cli/db.h"
#include "cli/exit_codes.h"
#include "cli/graph_render.h"
#include "views/item_view.h"
#include "cli/load_script.h"
#include "cli/recorded_script.h"
#include "views/graph_json.h"
#include "views/json_out.h"

namespace keel::cli {
namespace {

int Print(const WorkflowSpec& workflow, const NodeStatuses* statuses, const std::string& format,
          const std::map<std::string, ItemTally>* tallies = nullptr) {
  std::string text;
  if (format == "json") {
    JsonOut out;
    WriteGraphJson(&out, workflow, statuses, tallies);
    text = out.Text() + "\n";
  } else {
    text = format == "mermaid" ? RenderMermaid(workflow, statuses) : RenderDot(workflow, statuses);
  }
  std::fwrite(text.data(), 1, text.size(), stdout);
  return kExitSucceeded;
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
    return Print(script->main_workflow(), nullptr, args.format);
  }

  std::string db_path = ResolveDbPath(args.db);
  auto store = OpenDbIfExists(db_path);
  if (!store.ok()) return UsageError(store.status().message());
  if (*store == nullptr) {
    return UsageError(
        fmt::format("'{}' is not a file, and there is no database at {} to look up runs",
                    args.target, db_path));
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
  WorkflowSpec drawn = WithInnerNodes(*workflow, *nodes, tallies, args.items);
  return Print(drawn, &statuses, args.format, &tallies);
}

}  // namespace keel::cli
