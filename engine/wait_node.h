#pragma once
// Wait nodes (`keel.wait`): a node that waits for a signal sent with
// `keel signal` or for a durable timer, without holding a worker.
//
// The first time a run reaches a wait it fixes the wait's due time (a
// timer's, or a signal wait's timeout) and records it; every later attempt
// and every resume keeps it, so a crash never restarts the clock. When the
// signal has not come and the timer is not due, the wait either parks the run
// (the node ends kWaiting, its dependents do not start, and the run ends
// RunStatus::kWaiting once the rest has finished) or, when the run holds its
// waits (ExecutorOptions::hold_waits, `--wait`), waits on Clock timers and
// looks for the signal every kSignalPollSeconds. The logic lives in RunState
// (wait_node.cc), which owns the run's store and clock.
//
// Free functions and plain values: safe from any thread.

#include <memory>
#include <string>

#include "engine/workflow.h"

namespace keel {

struct WaitSpec {
  std::string signal;  // the signal's name; empty for a timer
  double timeout = 0;  // signal waits: seconds from when it is first reached; 0: none
  double delay = 0;    // timers: seconds from when it is first reached
  double until = 0;    // timers: a Unix time (wall seconds)

  bool timer() const { return signal.empty(); }
  // The due time (wall seconds) of a wait first reached at `now`: the
  // timer's, or the signal wait's timeout; 0 when it has none.
  double DueAt(double now) const;
};

// What a waiting node waits for, kept in its record's output_json while it is
// recorded kWaiting: {"signal": NAME} for a signal wait, {"due": T} when it
// has a due time (wall seconds), or both.
struct WaitInfo {
  std::string signal;
  double due = 0;
};
std::string WaitInfoJson(const WaitInfo& info);
// False when `json` is not such an object.
bool ParseWaitInfo(const std::string& json, WaitInfo* info);

// The body of a wait node: hands the attempt to NodeContext::wait (a failure
// of kind permanent when the executor set none).
std::shared_ptr<NodeBody> MakeWaitBody();

// How often a wait that holds the process looks for its signal.
inline constexpr double kSignalPollSeconds = 0.25;

}  // namespace keel
