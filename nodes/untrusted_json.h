#pragma once
// ParseUntrustedJson: the one way keel parses JSON that comes from outside
// it — a server's reply or error body, a model's text under output "json",
// a model's tool-call arguments, a keel.http reply. Such text may be
// hostile or broken, so the parse never recurses (RapidJSON's iterative
// parser: a reply of a million '[' cannot overflow the stack), refuses
// nesting deeper than kMaxJsonDepth (what keel.json accepts, so dependents
// can read any output) and requires strings to be valid UTF-8. A free
// function; any thread (the document belongs to the caller).

#include <rapidjson/document.h>

#include <string_view>

#include "engine/status.h"
#include "nodes/json_depth.h"

namespace keel {

// Parses `text` (one JSON value; a UTF-8 byte order mark is skipped) into
// `doc`, replacing what it held. On failure returns kTransient with the
// message "invalid JSON at offset N: REASON" (REASON such as "Invalid value"
// or "nested deeper than 200 levels"); `doc` is then null.
[[nodiscard]] Status ParseUntrustedJson(std::string_view text, rapidjson::Document* doc);

}  // namespace keel
