#pragma once
// How one recorded event looks in JSON: `keel show --events --json`, the
// API's events list and the live stream all write it with WriteEventJson.
// Free function; safe from any thread.

#include <string>

#include "engine/store.h"
#include "views/json_out.h"

namespace keel {

// What WriteEventJson adds to the event's own fields.
struct EventJsonOptions {
  // "run_id": the event's run id, first; for readers of events of many runs
  // (the live stream).
  bool with_run = false;
  // false: an llm_call event's recorded `request` and `reply` (up to tens
  // of KiB each) are left out and `"recorded": true` says they exist; a
  // reader fetches them from the node (GET runs/ID/nodes/NAME). The stream
  // and the API's event lists leave them out; `keel show --events` keeps
  // them.
  bool bodies = true;
};

// {"seq": N, "ts": ISO 8601, "node": NAME|null, "kind": K, "severity":
// "info"|"warning"|"error"|"critical" (engine/event_severity.h), "data": {...}},
// preceded by "run_id": ID with `options.with_run`. Events of a fallback
// workflow's llm calls (a "fallback_event" wrapping one) lose their bodies
// as direct ones do.
void WriteEventJson(JsonOut* out, const EventRecord& event, const EventJsonOptions& options = {});

// `event.data_json` as the brief form (bodies = false) writes it.
std::string BriefEventData(const EventRecord& event);

}  // namespace keel
