#pragma once
// Parses the times a user passes to filters (GET /api/v1/runs?since=...):
// ISO 8601 dates and times. Free function; any thread.

#include <string_view>

namespace keel {

// "2026-11-23", "2026-11-23T17:52", "2026-11-23T17:52:06", with optional
// fractional seconds and a zone ("Z", "+01:00", "-0530"; none means UTC), to
// wall seconds. False when `text` is not such a time.
bool ParseIsoTime(std::string_view text, double* wall);

}  // namespace keel
