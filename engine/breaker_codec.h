#pragma once
// The JSON forms in which stores keep the parts of a BreakerSnapshot that
// are lists or records: the window ([[time, flags], ...], flags 1 failed, 2
// slow), the outstanding probes ([{"id", "pid", "host", "start",
// "started_at", "renewed_at"}, ...]), the configuration of its last caller,
// and the rest (statistics, transitions, ramp and learned rate: see
// EncodeBreakerStats). Every store writes and reads them alike, so a breaker
// means the same in each.
//
// Free functions; pure, any thread.

#include <deque>
#include <string>
#include <vector>

#include "engine/circuit_breaker.h"

namespace keel {

std::string EncodeBreakerWindow(const std::deque<WindowCall>& recent);
// A damaged window reads as empty.
std::deque<WindowCall> DecodeBreakerWindow(const std::string& json);

std::string EncodeBreakerProbes(const std::vector<ProbeLease>& probes);
// A damaged probe list reads as empty.
std::vector<ProbeLease> DecodeBreakerProbes(const std::string& json);

// "{}" for an unknown configuration (an empty key).
std::string EncodeBreakerConfig(const BreakerConfig& config);
// A damaged or empty configuration reads as unknown (an empty key).
BreakerConfig DecodeBreakerConfig(const std::string& json);

// The snapshot's fields that have no column of their own: slow calls,
// timeouts, rejections, consecutive successes, last success and failure
// times, transitions, the ramp, the learned rate and the opens in a row.
std::string EncodeBreakerStats(const BreakerSnapshot& snapshot);
// Sets those fields of *snapshot from `json`; missing or damaged ones keep
// their defaults.
void DecodeBreakerStats(const std::string& json, BreakerSnapshot* snapshot);

}  // namespace keel
