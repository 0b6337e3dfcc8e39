#pragma once
// The circuit breakers as `keel breakers --json` and GET /api/v1/breakers
// show them (one serializer for both), and the figures the table shares.
// Free functions over values the caller owns; any thread.

#include <optional>
#include <vector>

#include "engine/store.h"
#include "views/json_out.h"

namespace keel {

// Seconds until open breaker `row` lets a probe through (0 once its
// cooldown has passed); nullopt when it is not open.
std::optional<double> HalfOpenIn(const BreakerRow& row, double now);

// Health rounded to a tenth of a percent: 100, 66.7, 0.
double RoundedHealth(const BreakerSnapshot& s);

// The figures the breakers page shows beyond the snapshot's own fields,
// as members of the object being written: next_probe_at, failure_threshold,
// failure_rate, window_s, min_calls, probes_allowed, successes_needed,
// window_calls, window_failures (null when not known).
void WriteBreakerFigures(JsonOut* out, const BreakerRow& row, double now);

// `rows` as one JSON array.
void WriteBreakersJson(JsonOut* out, const std::vector<BreakerRow>& rows, double now);

}  // namespace keel
