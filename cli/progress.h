#pragma once
// Progress: the Observer that `keel run` and `keel resume` hand to the
// Runner. It prints the "run ... started" (or "resumed") line on stderr as
// soon as the run exists, then one of two displays: on a terminal a live
// per-node view redrawn in place (LiveProgress), otherwise plain timestamped
// lines, one per node event and breaker transition (LineProgress); or, with
// --log-format json, JSON lines (cli/json_log_progress.h).
//
// Callbacks may arrive from many threads at once; every implementation
// serializes its own output.

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "engine/clock.h"
#include "engine/observer.h"
#include "engine/workflow.h"

namespace keel::cli {

struct ProgressOptions {
  bool resuming = false;
  // Resume: nodes kept from the earlier attempt, with the status they kept
  // (succeeded, fallback or skipped); they are not run again.
  std::unordered_map<std::string, NodeStatus> kept;
  // Runs the timer that writes batched lines; null means SystemClock().
  Clock* clock = nullptr;
  // Records that SIGINT or SIGTERM stopped run `run_id` (see
  // cli/interrupt_notice.h); called on a thread of its own. May be empty.
  std::function<void(const std::string& run_id, int signal_number)> on_interrupt;
  // --log-format json: JSON lines (cli/json_log_progress.h) instead of
  // either display.
  bool json_lines = false;
  // Fork: the run the new one was forked from; `kept` holds the nodes it reuses.
  std::string forked_from;
};

// OnRunFinished seals the run's end (see SealRunEnd in
// cli/interrupt_notice.h): the Runner records the final status next.
class Progress : public Observer {
 public:
  // Stops any background drawing and leaves the final display on screen.
  // Safe to call more than once; callbacks after Close() print nothing.
  virtual void Close() {}
  // The counts of a keel.map's items, "1000 items: 997 succeeded, 3 failed",
  // as items finish; `final` once the map has (see cli/map_progress.h).
  virtual void OnMapItems(std::string_view map, const std::string& counts, bool final) {}
};

// The display for `workflow` on stderr: JSON lines with
// `options.json_lines`, else live when stderr is a terminal whose TERM is
// not "dumb", plain lines otherwise. `workflow` must outlive it.
std::unique_ptr<Progress> MakeProgress(const WorkflowSpec& workflow, ProgressOptions options);

// The callback that records an interruption of run `info` through
// `options.on_interrupt`; empty when that is.
std::function<void(int)> RecordInterrupt(const RunInfo& info, const ProgressOptions& options);

// "run ID started: workflow NAME (N nodes)" or, resuming,
// "run ID resumed: K of N nodes kept".
std::string RunBanner(const RunInfo& info, const ProgressOptions& options);

}  // namespace keel::cli
