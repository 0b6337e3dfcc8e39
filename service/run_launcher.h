#pragma once
// RunLauncher: how `keel serve` starts or resumes a recorded run in a child
// process without ever racing another server or a `keel resume` for it.
//
// The hand-off (docs/architecture.md, "Handing runs to children"): in one
// write transaction the server takes the run (Store::HandOffRun: epoch
// still the one it read, owner dead; the epoch bumped to E, itself the
// owner), then spawns `keel resume RUN --handoff-epoch E`, whose claim
// succeeds only while the run's epoch is still E. So exactly one process
// gets each run. If the child ends without having claimed it (the script
// went missing, a bad --from), the server gives the run back
// (Store::ReleaseRun at E): a queued run is recorded failed, naming its log;
// any other run is left as it was, for a later resume. A server that dies
// after the hand-off leaves a run whose owner is dead, which another server
// or `keel resume` takes as usual.
//
// Thread-safety: every method may be called from any thread (the API's
// handlers and the supervisor's thread); one mutex guards what it tracks.

#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/mutex.h"
#include "engine/store.h"
#include "service/child_runs.h"

namespace keel::service {

// What became of one launch, for a caller that waits for the child to claim
// the run (POST runs/ID/resume).
struct Launch {
  int64_t epoch = 0;     // the epoch the run was handed over at
  uint64_t log_offset = 0;  // the size of the run's log before the child wrote to it
  // Set on the reaping thread when the child ends; read under the mutex.
  Mutex mu;
  bool ended GUARDED_BY(mu) = false;
  int exit_code GUARDED_BY(mu) = -1;
};

class RunLauncher {
 public:
  // `store` and `children` must outlive the launcher.
  RunLauncher(Store* store, ChildRuns* children);

  // Hands run `run` (as read, with the epoch read) over to this process and
  // starts `keel resume RUN --handoff-epoch E` plus `extra_args` in the slot
  // the caller took with ChildRuns::Reserve (given back on failure).
  // `event`, when its kind is set, is recorded in the hand-off transaction.
  // Fails (kPermanent) when the run was taken, cancelled or its owner lives.
  Result<std::shared_ptr<Launch>> Start(const RunRecord& run, EventRecord event,
                                        const std::vector<std::string>& extra_args);

  // Whether this server handed run `run_id` to a child still running.
  bool Launched(const std::string& run_id) const;
  // Whether run `run_id` was given back at `epoch` after a child failed to
  // claim it: the supervisor leaves it alone until something changes it.
  bool GaveBack(const std::string& run_id, int64_t epoch) const;

 private:
  void Ended(const std::string& run_id, bool queued, const std::shared_ptr<Launch>& launch,
             int exit_code);

  Store* const store_;
  ChildRuns* const children_;
  mutable Mutex mu_;
  std::set<std::string> launched_ GUARDED_BY(mu_);
  std::unordered_map<std::string, int64_t> gave_back_ GUARDED_BY(mu_);
};

}  // namespace keel::service
