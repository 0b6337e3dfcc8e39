#pragma once
// How serious a recorded event is: info, warning, error or critical, decided
// from its kind and from what its data says about the consequence (an
// optional node's failure only degrades the run; a breaker that keeps
// re-opening is worse than one that opened once). The one table behind
// `keel show --events`, the events JSON, the metrics and `--log-format json`;
// docs/severity.md lists it.
// Free functions over values the caller owns; safe from any thread.

#include <string_view>

namespace keel {

enum class Severity { kInfo, kWarning, kError, kCritical };

// "info", "warning", "error", "critical".
std::string_view SeverityName(Severity severity);

// Opens in a row (the "reopens" member of a breaker transition's data)
// from which a breaker opening is critical rather than a warning.
inline constexpr int kCriticalReopens = 3;

// The severity of an event of `kind` with data `data_json` (a JSON object,
// as recorded; members the rule needs that are absent, or data that does
// not parse, read as the mildest case). A "fallback_event" takes the
// severity of the event it wraps, at most kWarning: the node the fallback
// runs for tells the consequence with its own events. Kinds the table does
// not know are kInfo.
Severity EventSeverity(std::string_view kind, std::string_view data_json);

// Whether the table has a rule of its own for `kind` (else EventSeverity
// gives it the default, kInfo).
bool IsKnownEventKind(std::string_view kind);

}  // namespace keel
