#pragma once
// BreakerSummary: the aggregate of every circuit breaker that `keel
// breakers` prints under its table, `--json --summary` and GET
// /api/v1/breakers?summary=true write (views/breaker_json.h), and the
// dashboard shows: how many breakers are in each state, and the overall
// health. Plain values and free functions; any thread.

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/store_records.h"

namespace keel {

inline constexpr int kBreakerStates = static_cast<int>(BreakerState::kDisabled) + 1;

struct BreakerSummary {
  int64_t count = 0;
  std::array<int64_t, kBreakerStates> by_state{};  // indexed by BreakerState
  // The calls every breaker's health counts (its window, or all its calls
  // when the window is empty; HealthPercent) and the failed ones among them.
  int64_t health_calls = 0;
  int64_t health_failed = 0;
  // Successful calls over health_calls: the call-weighted mean of the
  // breakers' health, rounded to a tenth; 100 with no calls.
  double health_percent = 100;
};

BreakerSummary SummarizeBreakers(const std::vector<BreakerRow>& rows);

// "3 breakers: 1 closed, 1 open, 1 forced_open; health 87.5%", naming only
// the states some breaker is in.
std::string BreakerSummaryLine(const BreakerSummary& summary);

}  // namespace keel
