#pragma once
// How one recorded event looks in JSON: `keel show --events --json`, the
// API's events list and the live stream all write it with WriteEventJson.
// Free function; safe from any thread.

#include "engine/store.h"
#include "views/json_out.h"

namespace keel {

// What WriteEventJson adds to the event's own fields.
struct EventJsonOptions {
  // "run_id": the event's run id, first; for readers of events of many runs
  // (the live stream).
  bool with_run = false;
};

// {"seq": N, "ts": ISO 8601, "node": NAME|null, "kind": K, "data": {...}},
// preceded by "run_id": ID with `options.with_run`.
void WriteEventJson(JsonOut* out, const EventRecord& event, const EventJsonOptions& options = {});

}  // namespace keel
