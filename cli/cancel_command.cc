// `keel cancel RUN`: stops a run — running (its process is asked and stops
// within a second), waiting or interrupted (recorded cancelled at once).

#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "cli/commands.h"
#include "cli/db.h"
#include "cli/db_postgres.h"
#include "cli/exit_codes.h"
#include "engine/clock.h"
#include "views/run_actions.h"

namespace keel::cli {
namespace {

// How long `keel cancel` waits for a live owner to record the run cancelled.
constexpr double kOwnerGraceSeconds = 10;

}  // namespace

int CancelCommand(const CancelArgs& args) {
  std::string db_path = ResolveDbPath(args.db);
  auto store = OpenDbIfExists(db_path, DbAccess::kWrite);
  if (!store.ok()) return UsageError(store.status().message());
  if (*store == nullptr) return UsageError("no keel database at " + DbName(db_path));
  auto decision = CancelRunNow(**store, args.run_id, SystemClock()->WallNow());
  if (!decision.ok()) return UsageError(decision.status().message());
  const RunRecord* run = &decision->run;
  const std::string& was = decision->was;
  const CancelOutcome* outcome = &decision->outcome;
  if (*outcome == CancelOutcome::kCancelled) {
    std::printf("run %s cancelled (it was %s)\n", run->id.c_str(), was.c_str());
    return kExitSucceeded;
  }
  // A live process runs it: it sees the request within a second, stops its
  // nodes and records the run cancelled.
  std::fprintf(stderr, "asked process %d on %s to stop run %s\n", static_cast<int>(run->owner.pid),
               run->owner.host.c_str(), run->id.c_str());
  const double until = SystemClock()->Now() + kOwnerGraceSeconds;
  while (SystemClock()->Now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    auto now = (*store)->GetRun(run->id);
    if (!now.ok()) return UsageError(now.status().message());
    if (now->status == RunStatus::kRunning) continue;
    if (now->status == RunStatus::kCancelled) {
      std::printf("run %s cancelled (it was running)\n", run->id.c_str());
      return kExitSucceeded;
    }
    return UsageError(fmt::format("run {} ended {} before the cancel took effect", run->id,
                                  RunStatusName(now->status)));
  }
  std::printf("run %s asked to cancel; its process has not recorded it yet\n", run->id.c_str());
  return kExitSucceeded;
}

}  // namespace keel::cli
