#pragma once
// FaultPlan: decides, request by request, which fault keel-mock-llm injects
// on its own (--fail-first, then the --*-rate probabilities) and how much
// latency (--latency plus up to --jitter) a request gets. Draws come from a
// generator seeded with --seed, so the same sequence of requests meets the
// same faults on every run.
//
// Thread-safe: Next may be called from any thread; mu_ guards the generator.

#include <cstdint>
#include <random>
#include <string>

#include "engine/mutex.h"

namespace keel::mock {

// Probabilities in [0, 1] adding up to at most 1.
struct FaultRates {
  double error = 0;       // 500
  double rate_limit = 0;  // 429
  double hang = 0;
  double malformed = 0;
  double truncate = 0;
  double reset = 0;

  double Sum() const { return error + rate_limit + hang + malformed + truncate + reset; }
};

struct FaultPlanOptions {
  FaultRates rates;
  int64_t fail_first = 0;         // requests 1..fail_first get fail_mode
  std::string fail_mode = "500";  // a name IsMockFault accepts
  double latency_ms = 0;
  double jitter_ms = 0;
  uint64_t seed = 1;
};

class FaultPlan {
 public:
  explicit FaultPlan(FaultPlanOptions options);

  struct Draw {
    std::string fault;  // "" or a name IsMockFault accepts
    double latency_ms = 0;
  };

  // The fault and latency of request number `request` (1 for the first).
  // Every call consumes the same number of draws, faulted or not.
  Draw Next(int64_t request);

 private:
  double Uniform() EXCLUSIVE_LOCKS_REQUIRED(mu_);  // in [0, 1)

  const FaultPlanOptions options_;
  Mutex mu_;
  std::mt19937_64 rng_ GUARDED_BY(mu_);
};

}  // namespace keel::mock
