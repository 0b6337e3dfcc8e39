#pragma once
// The run listing of `keel runs` and GET /api/v1/runs: which runs, with the
// status each is shown with, and their JSON (one serializer for both).
// Free functions over values the caller owns; any thread.

#include <string>
#include <vector>

#include "engine/store.h"
#include "views/json_out.h"
#include "views/live_state.h"

namespace keel {

struct RunListQuery {
  std::string status;    // a status as shown (RunStatusLabel); empty: any
  std::string workflow;  // empty: any
  int limit = 20;        // <= 0: all
  std::string before;    // an exact run id: only runs listed after it (older); empty: from the newest
  std::string state;     // a live state (views/live_state.h); empty: any
  double since = 0;      // wall seconds: only runs started at or after it; 0: any
};

struct LabelledRun {
  RunListing listing;
  std::string label;  // RunStatusLabel
  LiveState live;     // ReadLiveState
};

// "queued, running, interrupted, waiting, succeeded, failed, degraded or cancelled".
extern const char* const kRunStatusNames;

// The runs `query` asks for, newest first. A run shown interrupted may be
// recorded so or recorded running with its process gone, so both are read
// and told apart by their label. Fails (kPermanent) when `query.status` is
// not a status or `query.state` not a live state (the message is "'X':
// expected ..."), or with the store's error. Each row's live state is read
// too (see ReadLiveState: nothing for runs not running or waiting).
Result<std::vector<LabelledRun>> ListLabelledRuns(Store& store, const RunListQuery& query,
                                                  double now);

// `rows` as the JSON array `keel runs --json` prints.
void WriteRunListJson(JsonOut* out, const std::vector<LabelledRun>& rows, double now);

}  // namespace keel
