#include "tools/mock_llm/fault_plan.h"

#include <utility>

namespace keel::mock {

FaultPlan::FaultPlan(FaultPlanOptions options)
    : options_(std::move(options)), rng_(options_.seed) {}

double FaultPlan::Uniform() { return static_cast<double>(rng_() >> 11) * 0x1.0p-53; }

FaultPlan::Draw FaultPlan::Next(int64_t request) {
  double pick = 0;
  double jitter = 0;
  {
    MutexLock lock(&mu_);
    pick = Uniform();
    jitter = Uniform();
  }
  Draw draw;
  draw.latency_ms = options_.latency_ms + jitter * options_.jitter_ms;
  if (request <= options_.fail_first) {
    draw.fault = options_.fail_mode;
    return draw;
  }
  const FaultRates& r = options_.rates;
  const std::pair<double, const char*> kinds[] = {
      {r.error, "500"},           {r.rate_limit, "429"},     {r.hang, "hang"},
      {r.malformed, "malformed"}, {r.truncate, "truncated"}, {r.reset, "reset"},
  };
  double edge = 0;
  for (const auto& [rate, fault] : kinds) {
    edge += rate;
    if (pick < edge) {
      draw.fault = fault;
      break;
    }
  }
  return draw;
}

}  // namespace keel::mock
