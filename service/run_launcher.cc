#include "service/run_launcher.h"

#include <sys/stat.h>

#include <utility>

#include "engine/clock.h"
#include "engine/process_owner.h"

namespace keel::service {
namespace {

uint64_t FileSize(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

// The owner written when a run is given back: no live process (pid 0 on this host).
Owner NoOwner() { return Owner{0, CurrentOwner().host, 0}; }

}  // namespace

RunLauncher::RunLauncher(Store* store, ChildRuns* children)
    : store_(store), children_(children) {}

Result<std::shared_ptr<Launch>> RunLauncher::Start(const RunRecord& run, EventRecord event,
                                                   const std::vector<std::string>& extra_args) {
  const double now = SystemClock()->WallNow();
  event.run_id = run.id;
  event.ts = now;
  auto epoch = store_->HandOffRun(run.id, run.epoch, CurrentOwner(), now, event,
                                  [](const Owner& owner, double heartbeat_age) {
                                    return OwnerAlive(owner, heartbeat_age);
                                  });
  if (!epoch.ok()) {
    children_->Unreserve();
    return epoch.status();
  }
  auto launch = std::make_shared<Launch>();
  launch->epoch = *epoch;
  launch->log_offset = FileSize(children_->LogPath(run.id));
  std::vector<std::string> args = {"resume", run.id, "--handoff-epoch", std::to_string(*epoch)};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  const bool queued = run.status == RunStatus::kQueued;
  {
    MutexLock lock(&mu_);
    launched_.insert(run.id);
  }
  Status started = children_->Start(run.id, args, [this, id = run.id, queued, launch](int code) {
    Ended(id, queued, launch, code);
  });
  if (!started.ok()) {
    Ended(run.id, queued, launch, -1);
    return started;
  }
  return launch;
}

void RunLauncher::Ended(const std::string& run_id, bool queued,
                        const std::shared_ptr<Launch>& launch, int exit_code) {
  // Only succeeds while the run's epoch is still the hand-off's: the child
  // never claimed it.
  std::string error;
  if (queued) {
    error = "could not be started (keel resume exited with " + std::to_string(exit_code) +
            "); see " + children_->LogPath(run_id);
  }
  Status released =
      store_->ReleaseRun(run_id, launch->epoch, NoOwner(), SystemClock()->WallNow(), error);
  {
    MutexLock lock(&mu_);
    launched_.erase(run_id);
    if (released.ok()) gave_back_[run_id] = launch->epoch + 1;
  }
  MutexLock lock(&launch->mu);
  launch->ended = true;
  launch->exit_code = exit_code;
}

bool RunLauncher::Launched(const std::string& run_id) const {
  MutexLock lock(&mu_);
  return launched_.count(run_id) > 0;
}

bool RunLauncher::GaveBack(const std::string& run_id, int64_t epoch) const {
  MutexLock lock(&mu_);
  auto it = gave_back_.find(run_id);
  return it != gave_back_.end() && it->second == epoch;
}

}  // namespace keel::service
