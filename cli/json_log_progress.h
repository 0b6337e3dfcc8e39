#pragma once
// `--log-format json`: a run's progress on stderr as JSON lines, one object
// per line, for log shippers and scripts:
//   {"ts": ISO 8601 UTC, "run_id": ID, "node": NAME|null, "kind": K,
//    "severity": "info"|"warning"|"error"|"critical", "message": TEXT,
//    "data": {...}}
// `kind` and `data` are those of the event the run records (data in the
// brief form of views/event_json.h), the severity engine/event_severity.h's,
// the message views/event_text.h's. Every event of the run is a line, map
// items and breaker transitions included, except checkpoints (internal
// steps of a node); a script's keel.log and print lines are lines of kind
// "log". docs/severity.md has the details.
//
// Callbacks come from any thread; lines are queued in order and written
// within PendingLines::kFlushDelay.

#include <memory>
#include <string>
#include <string_view>

#include "cli/progress.h"

namespace keel::cli {

// The progress display that writes JSON lines.
std::unique_ptr<Progress> MakeJsonLogProgress(ProgressOptions options);

// One line of the log, '\n' included: `ts` wall seconds, `node` "" for a
// run-level line, `data_json` a JSON object. The severity is the event's.
std::string JsonLogLine(double ts, std::string_view run_id, std::string_view node,
                        std::string_view kind, std::string_view data_json,
                        std::string_view message);

}  // namespace keel::cli
