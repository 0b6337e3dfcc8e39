#pragma once
// The live state of a run, finer than its status, for `keel runs` and GET
// /api/v1/runs (`state`, `waiting_for`): queued, running, retrying,
// backing_off, breaker_open, waiting_signal, waiting_timer or interrupted;
// none for a finished run. Derived from the run's status label and, for a
// run that is running or waiting, from its running and waiting node records
// and each one's last events, read through indexes (a few small reads per
// active run, none for the others).
// Free functions over values the caller owns; any thread.

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/store.h"

namespace keel {

struct LiveState {
  std::string state;        // "" for a finished run
  std::string waiting_for;  // the signal, for waiting_signal
  std::string node;         // the node that decided the state, if one did
  double until = 0;         // wall seconds the state lasts until, when known; 0 else
};

// "queued, running, retrying, backing_off, breaker_open, waiting_signal,
// waiting_timer or interrupted".
extern const char* const kLiveStateNames;
bool IsLiveStateName(const std::string& name);

// What node events (its last ones, in seq order) say of a node recorded
// running at `now`: retrying (an attempt after a failed one, or a retry
// whose delay has passed), backing_off (a retry scheduled and not due yet),
// breaker_open (refused by an open breaker), else running.
LiveState NodeLiveState(const std::vector<EventRecord>& events, double now);

// The run's live state from its status label (RunStatusLabel), the records
// of its waiting nodes, and its running nodes with each one's last events.
// The most telling wins: breaker_open, backing_off, retrying,
// waiting_signal, waiting_timer, running.
LiveState DeriveLiveState(
    const std::string& label, const std::vector<NodeRecord>& waiting,
    const std::vector<std::pair<NodeRecord, std::vector<EventRecord>>>& running, double now);

// Reads what DeriveLiveState needs of run `run` (shown as `label`) and
// derives it: nothing for a run that is not running or waiting; else its
// waiting nodes and up to 20 running nodes with their last 50 events each.
// Fails with the store's error.
Result<LiveState> ReadLiveState(Store& store, const RunRecord& run, const std::string& label,
                                double now);

}  // namespace keel
