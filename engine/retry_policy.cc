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

double RetryPolicy::Backoff(int next_attempt) const {
  const double cap = max > 0 ? max : 0;  // also for a NaN max
  if (!(base > 0) || cap == 0) return 0;
  if (base >= cap) return cap;
  if (!(factor > 1)) return base;                   // factor 1: constant
  const int retry = std::max(1, next_attempt - 1);  // 1 for the first retry
  // factor^(retry - 1) may overflow to infinity; compared with cap / base
  // (finite, > 1 here) it only decides that the cap is reached. Never
  // base * inf, which is NaN for base 0 and would slip through std::min.
  const double growth = std::pow(factor, static_cast<double>(retry - 1));
  if (!std::isfinite(growth) || growth >= cap / base) return cap;
  return std::min(cap, base * growth);
}

double RetryPolicy::Delay(int next_attempt, double previous, double retry_after,
                          std::mt19937_64& rng) const {
  const double exp = Backoff(next_attempt);
  const double cap = max > 0 ? max : 0;
  auto uniform = [&](double lo, double hi) {
    if (!(hi > lo)) return lo;
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
    case Jitter::kDecorrelated: {
      // AWS "decorrelated jitter": sleep = min(cap, random(base, prev * 3)),
      // with the bounds capped first so prev * 3 cannot overflow.
      const double prev = std::isfinite(previous) && previous > 0 ? previous : 0;
      const double lo = std::min(base > 0 ? base : 0, cap);
      const double from = std::max(lo, prev);
      const double hi = from >= cap / 3 ? cap : from * 3;
      delay = std::min(cap, uniform(lo, hi));
      break;
    }
  }
  if (retry_after >= 0) delay = std::max(delay, retry_after);
  return delay;
}

}  // namespace keel
