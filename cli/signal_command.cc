// `keel signal RUN NAME [--data JSON]`: delivers a signal to a run's wait
// node (DESIGN.md §8), stored durably until a wait takes it.

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <vector>

#include "cli/commands.h"
#include "cli/db.h"
#include "cli/db_postgres.h"
#include "cli/exit_codes.h"
#include "cli/wait_hint.h"
#include "engine/clock.h"
#include "engine/did_you_mean.h"
#include "engine/wait_node.h"
#include "store/postgres/pg_connection.h"
#include "views/run_actions.h"

namespace keel::cli {
namespace {

// The signals the waiting nodes of `nodes` wait for.
std::vector<std::string> AwaitedSignals(const std::vector<NodeRecord>& nodes) {
  std::vector<std::string> names;
  for (const NodeRecord& node : nodes) {
    WaitInfo info;
    if (node.status == NodeStatus::kWaiting && node.output_json &&
        ParseWaitInfo(*node.output_json, &info) && !info.signal.empty()) {
      names.push_back(info.signal);
    }
  }
  return names;
}

}  // namespace

int SignalCommand(const SignalArgs& args) {
  if (args.name.empty()) return UsageError("the signal's name may not be empty");
  std::string data = args.data ? *args.data : "null";
  Status valid = CheckSignalData(data);
  if (!valid.ok()) {
    return UsageError(fmt::format("--data is {}; quote it for the shell, e.g. --data "
                                  "'{{\"ok\": true}}'",
                                  valid.message()));
  }
  std::string db_path = ResolveDbPath(args.db);
  auto store = OpenDbIfExists(db_path, DbAccess::kWrite);
  if (!store.ok()) return UsageError(store.status().message());
  if (*store == nullptr) return UsageError("no keel database at " + DbName(db_path));
  auto run = SendRunSignal(**store, args.run_id, args.name, data, SystemClock()->WallNow());
  if (!run.ok()) return UsageError(run.status().message());
  std::printf("signal '%s' sent to run %s\n", args.name.c_str(), run->id.c_str());

  // Where the run stands now, to say what happens next.
  auto now_run = (*store)->GetRun(run->id);
  auto nodes = (*store)->GetNodes(run->id);
  if (!now_run.ok() || !nodes.ok()) return kExitSucceeded;
  std::vector<std::string> awaited = AwaitedSignals(*nodes);
  bool awaited_now = std::find(awaited.begin(), awaited.end(), args.name) != awaited.end();
  if (!awaited.empty() && !awaited_now) {
    std::fprintf(stderr,
                 "note: no node of run %s waits for signal '%s' now%s; it is kept for a later "
                 "wait\n",
                 run->id.c_str(), args.name.c_str(), DidYouMean(args.name, awaited).c_str());
  }
  std::string label = RunStatusLabel(*now_run, SystemClock()->WallNow());
  auto distributed = pg::IsPostgresUrl(db_path) ? IsDistributedRun(db_path, run->id)
                                                : Result<bool>(false);
  if (distributed.ok() && *distributed) {
    std::fprintf(stderr, "workers on %s continue the run when a wait takes it\n",
                 DbName(db_path).c_str());
  } else if (label == "running") {
    std::fprintf(stderr, "the run's process (pid %d) takes it when its wait looks next\n",
                 static_cast<int>(now_run->owner.pid));
  } else {
    std::fprintf(stderr, "continue the run with: keel resume %s%s\n", run->id.c_str(),
                 DbArg(args.db).c_str());
  }
  return kExitSucceeded;
}

}  // namespace keel::cli
