#pragma once
// Text formatting shared by the commands: seconds, durations and times.
// Free functions; safe from any thread.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace keel {

// Seconds with millisecond precision and no trailing zeros: "0.012s", "0.5s", "3s".
std::string FormatSeconds(double seconds);

// A duration for tables: "0.012s", "12.3s", "4m05s", "2h03m", "3d04h";
// ">1000000d" beyond a million days or when not finite.
std::string FormatDuration(double seconds);

// FormatDuration of `seconds`, or "-" when it is unknown.
std::string FormatDurationOrDash(std::optional<double> seconds);

// Wall time (seconds since the epoch) as ISO 8601 UTC with milliseconds:
// "2026-11-23T17:52:06.123Z".
std::string FormatIsoUtc(double wall);

// Wall time as local "2026-11-23 17:52:06", for tables.
std::string FormatLocalTime(double wall);

// Wall time as local "17:52:06.123", for log lines.
std::string FormatClockTime(double wall);

// A count with thousands separators: "1,234,567".
std::string FormatCount(int64_t count);

// Money with four decimals, "0.0123"; "<0.0001" for a positive amount that
// would print as zero.
std::string FormatCost(double cost);

// A size in bytes for people: "812 B", "4.0 KiB", "1.5 MiB", "2.3 GiB".
std::string FormatBytes(uint64_t bytes);

// Parses a duration such as "0s", "90s", "15m", "12h", "7d" or "2w" (a
// number, zero or more, fractions allowed, then one unit). Returns false on
// anything else.
bool ParseDuration(std::string_view text, double* seconds);

// `text` cut to at most `width` characters (code points), ending in "…" when cut.
std::string Truncate(std::string_view text, size_t width);

// Number of code points in UTF-8 `text`: its width on a terminal, for the
// characters keel prints.
size_t DisplayWidth(std::string_view text);

// `text` with newlines and tabs replaced by spaces, for one-line displays.
std::string OneLine(std::string_view text);

// The first line of `text`: a one-line summary of a message that may carry a
// Lua traceback after it.
std::string FirstLine(std::string_view text);

}  // namespace keel
