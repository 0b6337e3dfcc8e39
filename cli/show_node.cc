// `keel show RUN --node NAME`: one node of a run — its attempts, why it is
// where it is, its input and output (views/node_view.h); --json prints the
// object GET /api/v1/runs/ID/nodes/NAME answers.

#include <cstdio>

#include "cli/commands.h"
#include "cli/db.h"
#include "cli/db_postgres.h"
#include "cli/exit_codes.h"
#include "cli/recorded_script.h"
#include "engine/clock.h"
#include "views/json_out.h"
#include "views/node_view.h"

namespace keel::cli {
namespace {

// The node's kind and dependencies from the run's recorded script; none
// when it no longer loads or does not have the node.
NodeShapeLookup ShapesFrom(Store* store) {
  return [store](const RunRecord& run, const std::string& node) -> std::optional<NodeShape> {
    if (node.find_first_of("[/#") != std::string::npos) return std::nullopt;
    auto script = LoadRecordedScript(store, run);
    if (!script.ok()) return std::nullopt;
    const WorkflowSpec* workflow = (*script)->Find(run.workflow);
    if (workflow == nullptr) return std::nullopt;
    for (const NodeSpec& spec : workflow->nodes) {
      if (spec.name == node) return NodeShape{spec.kind, spec.after};
    }
    return std::nullopt;
  };
}

}  // namespace

int ShowNodeCommand(const ShowArgs& args) {
  std::string db_path = ResolveDbPath(args.db);
  auto store = OpenDbIfExists(db_path);
  if (!store.ok()) return UsageError(store.status().message());
  if (*store == nullptr) return UsageError("no keel database at " + DbName(db_path));
  auto view = ReadNodeView(**store, args.run_id, args.node, ShapesFrom(store->get()),
                           SystemClock()->WallNow());
  if (!view.ok()) return UsageError("--node " + view.status().message());
  if (args.json) {
    JsonOut out;
    WriteNodeViewJson(&out, *view);
    out.Print(stdout);
  } else {
    std::fputs(NodeViewText(*view).c_str(), stdout);
  }
  return kExitSucceeded;
}

}  // namespace keel::cli
