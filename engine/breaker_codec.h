#pragma once
// The JSON forms in which stores keep the parts of a BreakerSnapshot that
// are lists or records: the failure-rate window ([[time, failed], ...]), the
// outstanding probes ([{"id", "pid", "host", "start", "started_at",
// "renewed_at"}, ...]) and the configuration of its last caller. Every store
// writes and reads them alike, so a breaker means the same in each.
//
// Free functions; pure, any thread.

#include <string>
#include <utility>
#include <vector>

#include "engine/circuit_breaker.h"

namespace keel {

std::string EncodeBreakerWindow(const std::vector<std::pair<double, int>>& recent);
// A damaged window reads as empty.
std::vector<std::pair<double, int>> DecodeBreakerWindow(const std::string& json);

std::string EncodeBreakerProbes(const std::vector<ProbeLease>& probes);
// A damaged probe list reads as empty.
std::vector<ProbeLease> DecodeBreakerProbes(const std::string& json);

// "{}" for an unknown configuration (an empty key).
std::string EncodeBreakerConfig(const BreakerConfig& config);
// A damaged or empty configuration reads as unknown (an empty key).
BreakerConfig DecodeBreakerConfig(const std::string& json);

}  // namespace keel
