#include "engine/retry_policy.h"

#include <algorithm>
#include <cmath>

namespace keel {

bool RetryPolicy::Retries(ErrorKind kind) const {
  if (on.empty()) {
    return kind != ErrorKind::kPermanent && kind != ErrorKind::kCircuitOpen &&
           kind != ErrorKind::kCancelled && kind != ErrorKind::kNone;
  }
  return std::find(on.begin(), on.end(), kind) != on.end();
}

double RetryPolicy::Delay(int next_attempt, double previous, double retry_after,
                          std::mt19937_64& rng) const {
  int retry = std::max(1, next_attempt - 1);  // 1 for the first retry
  double exp = std::min(max, base * std::pow(factor, retry - 1));
  auto uniform = [&](double lo, double hi) {
    if (hi <= lo) return lo;
    return std::uniform_real_distribution<double>(lo, hi)(rng);
  };
  double delay = exp;
  switch (jitter) {
    case Jitter::kNone:
      break;
    case Jitter::kFull:
      delay = uniform(0, exp);
      break;
    case Jitter::kEqual:
      delay = exp / 2 + uniform(0, exp / 2);
      break;
    case Jitter::kDecorrelated:
      // AWS "decorrelated jitter": sleep = min(cap, random(base, prev * 3)).
      delay = std::min(max, uniform(base, std::max(base, previous) * 3));
      break;
  }
  if (retry_after >= 0) delay = std::max(delay, retry_after);
  return delay;
}

}  // namespace keel
