#pragma once
// How one recorded event looks in JSON: `keel show --events --json`, the
// API's events list and the live stream all write it with WriteEventJson.
// Free function; safe from any thread.

#include "engine/store.h"
#include "views/json_out.h"

namespace keel {

// {"seq": N, "ts": ISO 8601, "node": NAME|null, "kind": K, "data": {...}}
void WriteEventJson(JsonOut* out, const EventRecord& event);

}  // namespace keel
