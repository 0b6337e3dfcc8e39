#pragma once
// The circuit breakers as `keel breakers --json` and GET /api/v1/breakers
// show them (one serializer for both), and the figures the table shares.
// Free functions over values the caller owns; any thread.

#include <optional>
#include <vector>

#include "engine/store.h"
#include "views/breaker_summary.h"
#include "views/json_out.h"

namespace keel {

// Seconds until open breaker `row` lets a probe through (0 once its
// cooldown has passed); nullopt when it is not open.
std::optional<double> HalfOpenIn(const BreakerRow& row, double now);

// Health rounded to a tenth of a percent: 100, 66.7, 0.
double RoundedHealth(const BreakerSnapshot& s);

// The figures the breakers page shows beyond the snapshot's own fields,
// as members of the object being written: next_probe_at, the configuration
// of the last call through it (failure_threshold, failure_rate, window_s,
// min_calls, probes_allowed, successes_needed, window_calls_limit, slow_s,
// slow_rate, ramp_s, ramp_start, adaptive, margin; null when not known or
// not in effect), the outcomes in its window now (window_calls,
// window_failures, window_slow; null when it keeps none) and `effective`,
// the values it works with now: failure_threshold_rate,
// learned_failure_rate, next_cooldown_s, ramp_share and reopens.
void WriteBreakerFigures(JsonOut* out, const BreakerRow& row, double now);

// `rows` as one JSON array.
void WriteBreakersJson(JsonOut* out, const std::vector<BreakerRow>& rows, double now);

// The aggregate as an object: count, states {closed: N, ...} with every
// state, health_calls, health_failed, health_percent.
void WriteBreakerSummaryJson(JsonOut* out, const BreakerSummary& summary);

// {"summary": WriteBreakerSummaryJson, "breakers": WriteBreakersJson}.
void WriteBreakersWithSummaryJson(JsonOut* out, const std::vector<BreakerRow>& rows, double now);

}  // namespace keel
