#include "views/breaker_summary.h"

#include <fmt/format.h>

#include <cmath>

namespace keel {

BreakerSummary SummarizeBreakers(const std::vector<BreakerRow>& rows) {
  BreakerSummary summary;
  for (const BreakerRow& row : rows) {
    const BreakerSnapshot& s = row.snapshot;
    ++summary.count;
    ++summary.by_state[static_cast<int>(s.state)];
    // The calls HealthPercent counts.
    if (!s.recent.empty()) {
      summary.health_calls += static_cast<int64_t>(s.recent.size());
      for (const WindowCall& call : s.recent) {
        summary.health_failed += (call.flags & WindowCall::kFailed) != 0;
      }
    } else {
      summary.health_calls += s.calls;
      summary.health_failed += s.failed;
    }
  }
  if (summary.health_calls > 0) {
    double share = static_cast<double>(summary.health_calls - summary.health_failed) /
                   static_cast<double>(summary.health_calls);
    summary.health_percent = std::round(share * 1000) / 10;
  }
  return summary;
}

std::string BreakerSummaryLine(const BreakerSummary& summary) {
  std::string line = fmt::format("{} breaker{}", summary.count, summary.count == 1 ? "" : "s");
  const char* sep = ": ";
  for (int i = 0; i < kBreakerStates; ++i) {
    if (summary.by_state[i] == 0) continue;
    line += fmt::format("{}{} {}", sep, summary.by_state[i],
                        BreakerStateName(static_cast<BreakerState>(i)));
    sep = ", ";
  }
  return line + fmt::format("; health {}%", summary.health_percent);
}

}  // namespace keel
