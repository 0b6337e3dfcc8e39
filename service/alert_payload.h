#pragma once
// The JSON document `keel serve --notify` posts for one alert (see
// docs/reference.md, "Alerts"). Free functions; any thread.

#include <string>

#include "engine/store.h"

namespace keel::service {

// {"kind", "dedupe_id", "time", "run_id", "workflow", "status", "error",
//  "breaker", "attempt"}: fields that do not apply are null. Holds only what
// the database recorded about the run or breaker: no parameters, outputs or
// keys.
std::string AlertPayloadJson(const Store::AlertRow& row);

}  // namespace keel::service
