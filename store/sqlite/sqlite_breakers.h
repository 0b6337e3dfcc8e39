#pragma once
// How a BreakerSnapshot is stored in the `breakers` table: one column per
// field, the failure-rate window as JSON ([[time, failed], ...]), the
// outstanding probes as JSON ([{"id", "pid", "host", "start", "started_at",
// "renewed_at"}, ...]) beside their count in probes_out, the configuration
// of its last caller as JSON (schema version 12), and the rest of what it
// knows (statistics, transitions, ramp, learned rate) as JSON (schema
// version 15). Shared by
// SqliteWriter (read-modify-write) and SqliteReader (listing).
// Free functions over a Statement the caller owns and serializes.

#include <string>

#include "engine/circuit_breaker.h"
#include "store/sqlite/sqlite_util.h"

namespace keel::sqlite {

// The snapshot's columns, in the order ReadBreaker and BindBreaker use.
inline constexpr char kBreakerColumns[] =
    "state, failures, probes_out, successes, opened_at, cooldown, probes_json, calls, failed, "
    "window_json, config_json, stats_json";

// Reads a snapshot from the current row's columns `first`, `first` + 1, ...
// Unknown states read as closed; a damaged window or probe list reads as
// empty.
void ReadBreaker(const Statement& row, int first, BreakerSnapshot* snapshot);

// Binds `snapshot` to parameters `first`, `first` + 1, ... The encoded JSON
// columns are kept (one after the other) in `*json`, which must outlive the
// statement's next reset.
void BindBreaker(Statement* stmt, int first, const BreakerSnapshot& snapshot, std::string* json);

}  // namespace keel::sqlite
