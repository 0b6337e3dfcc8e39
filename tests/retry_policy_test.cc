#include "engine/retry_policy.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <limits>
#include <vector>

namespace keel {

TEST_CASE("default retry kinds exclude permanent, circuit_open and cancelled") {
  RetryPolicy p;
  CHECK(p.Retries(ErrorKind::kTransient));
  CHECK(p.Retries(ErrorKind::kTimeout));
  CHECK(p.Retries(ErrorKind::kRateLimited));
  CHECK(p.Retries(ErrorKind::kError));
  CHECK_FALSE(p.Retries(ErrorKind::kPermanent));
  CHECK_FALSE(p.Retries(ErrorKind::kCircuitOpen));
  CHECK_FALSE(p.Retries(ErrorKind::kCancelled));
  p.on = {ErrorKind::kTimeout};
  CHECK(p.Retries(ErrorKind::kTimeout));
  CHECK_FALSE(p.Retries(ErrorKind::kTransient));
}

TEST_CASE("no jitter grows exponentially and stops at max") {
  RetryPolicy p;
  p.base = 0.5;
  p.factor = 2;
  p.max = 3;
  p.jitter = Jitter::kNone;
  std::mt19937_64 rng(1);
  CHECK(p.Delay(2, 0, -1, rng) == doctest::Approx(0.5));
  CHECK(p.Delay(3, 0, -1, rng) == doctest::Approx(1.0));
  CHECK(p.Delay(4, 0, -1, rng) == doctest::Approx(2.0));
  CHECK(p.Delay(5, 0, -1, rng) == doctest::Approx(3.0));
  CHECK(p.Delay(30, 0, -1, rng) == doctest::Approx(3.0));
}

TEST_CASE("every jitter kind stays within its bounds") {
  std::mt19937_64 rng(42);
  RetryPolicy p;
  p.base = 1;
  p.factor = 2;
  p.max = 20;
  for (int attempt = 2; attempt < 10; ++attempt) {
    double exp = std::min(20.0, std::pow(2.0, attempt - 2));
    for (int i = 0; i < 500; ++i) {
      p.jitter = Jitter::kFull;
      double full = p.Delay(attempt, 0, -1, rng);
      CHECK((full >= 0 && full <= exp));
      p.jitter = Jitter::kEqual;
      double equal = p.Delay(attempt, 0, -1, rng);
      CHECK((equal >= exp / 2 && equal <= exp));
      p.jitter = Jitter::kDecorrelated;
      double prev = exp;
      double dec = p.Delay(attempt, prev, -1, rng);
      CHECK((dec >= 1 && dec <= std::min(20.0, prev * 3)));
    }
  }
}

TEST_CASE("Retry-After is a floor, even above max") {
  std::mt19937_64 rng(7);
  RetryPolicy p;
  p.max = 2;
  for (Jitter j : {Jitter::kNone, Jitter::kFull, Jitter::kEqual, Jitter::kDecorrelated}) {
    p.jitter = j;
    CHECK(p.Delay(2, 0, 5.0, rng) >= 5.0);
    CHECK(p.Delay(2, 0, 0.0, rng) >= 0.0);
  }
}

namespace {

constexpr Jitter kJitters[] = {Jitter::kNone, Jitter::kFull, Jitter::kEqual, Jitter::kDecorrelated};

// Attempt numbers from the first retry to INT_MAX, densely where doubles
// overflow (factor 2 overflows past retry 1024).
std::vector<int> AttemptSweep() {
  std::vector<int> attempts;
  for (int a = 2; a <= 2100; ++a) attempts.push_back(a);
  for (int a : {4096, 65536, 1000000, 1000001, INT_MAX / 2, INT_MAX - 1, INT_MAX}) {
    attempts.push_back(a);
  }
  return attempts;
}

}  // namespace

TEST_CASE("base 0 waits 0 for every attempt (no jump to max after attempt 1025)") {
  RetryPolicy p;
  p.base = 0;
  p.max = 30;
  p.factor = 2;
  p.jitter = Jitter::kNone;
  std::mt19937_64 rng(3);
  for (int a : {2, 1025, 1026, 1027, 1100, 1000000, INT_MAX}) {
    CAPTURE(a);
    CHECK(p.Backoff(a) == 0);
    CHECK(p.Delay(a, 0, -1, rng) == 0);
  }
}

TEST_CASE("huge attempt numbers stay at max") {
  RetryPolicy p;
  p.base = 0.5;
  p.max = 30;
  p.factor = 2;
  std::mt19937_64 rng(5);
  for (int a : {1025, 1026, 1027, 1000000, INT_MAX}) {
    CAPTURE(a);
    CHECK(p.Backoff(a) == 30);
    p.jitter = Jitter::kNone;
    CHECK(p.Delay(a, 0, -1, rng) == 30);
  }
}

TEST_CASE("backoff is finite, monotone and capped for every accepted base, max and factor") {
  // Ranges the loader accepts (engine/node_policy.cc): base >= 0, max > 0
  // (raised to base when below it), factor >= 1; all finite. Also max 0.
  const double kBases[] = {0, 1e-300, 5e-324, 1e-9, 0.001, 0.5, 1, 30, 1e6, 1e300};
  const double kMaxes[] = {0,  5e-324, 1e-9,  0.5,
                           30, 3600,   1e300, std::numeric_limits<double>::max()};
  const double kFactors[] = {
      1, 1 + 1e-12, 1.0001, 1.5, 2, 10, 1e6, 1e300, std::numeric_limits<double>::max()};
  const std::vector<int> attempts = AttemptSweep();
  for (double base : kBases) {
    for (double max : kMaxes) {
      for (double factor : kFactors) {
        RetryPolicy p;
        p.base = base;
        p.max = max;
        p.factor = factor;
        CAPTURE(base);
        CAPTURE(max);
        CAPTURE(factor);
        double last = 0;
        for (int a : attempts) {
          double b = p.Backoff(a);
          // Base 0 never waits; factor 1 waits base (up to max) every time.
          double exact = base == 0 ? 0 : factor == 1 ? std::min(base, max) : b;
          if (!(std::isfinite(b) && b >= 0 && b <= max && b >= last && b == exact)) {
            CAPTURE(a);
            CAPTURE(b);
            CAPTURE(last);
            FAIL_CHECK("backoff not finite, monotone, within [0, max] and as the formula says");
            break;
          }
          last = b;
        }
        // Where it does not stay at zero or start at the cap, it reaches max.
        if (base > 0 && max > 0 && factor >= 2) CHECK(p.Backoff(INT_MAX) == max);
      }
    }
  }
}

TEST_CASE("every jitter mode stays finite, within [0, max] and above Retry-After") {
  const double kBases[] = {0, 1e-300, 1e-9, 0.5, 1e300};
  const double kMaxes[] = {0, 1e-9, 30, std::numeric_limits<double>::max()};
  const double kFactors[] = {1, 2, 1e300};
  const double kPrevious[] = {0,
                              1e-9,
                              0.5,
                              29,
                              30,
                              1e6,
                              1e300,
                              std::numeric_limits<double>::max(),
                              std::numeric_limits<double>::infinity(),
                              std::numeric_limits<double>::quiet_NaN(),
                              -1};
  const int kAttempts[] = {2, 3, 1024, 1025, 1026, 1000000, INT_MAX};
  std::mt19937_64 rng(11);
  for (Jitter jitter : kJitters) {
    for (double base : kBases) {
      for (double max : kMaxes) {
        for (double factor : kFactors) {
          RetryPolicy p;
          p.base = base;
          p.max = max;
          p.factor = factor;
          p.jitter = jitter;
          for (int a : kAttempts) {
            for (double previous : kPrevious) {
              for (int draw = 0; draw < 4; ++draw) {
                double d = p.Delay(a, previous, -1, rng);
                if (!(std::isfinite(d) && d >= 0 && d <= max)) {
                  CAPTURE(static_cast<int>(jitter));
                  CAPTURE(base);
                  CAPTURE(max);
                  CAPTURE(factor);
                  CAPTURE(a);
                  CAPTURE(previous);
                  CAPTURE(d);
                  FAIL_CHECK("delay not finite or outside [0, max]");
                }
                if (jitter != Jitter::kDecorrelated) CHECK(d <= p.Backoff(a));
                for (double retry_after : {0.0, 0.25, 45.0, 1e9}) {
                  CHECK(p.Delay(a, previous, retry_after, rng) >= retry_after);
                }
              }
            }
          }
        }
      }
    }
  }
}

TEST_CASE("decorrelated jitter grows from the previous delay, capped at max") {
  RetryPolicy p;
  p.base = 1;
  p.max = 100;
  p.jitter = Jitter::kDecorrelated;
  std::mt19937_64 rng(13);
  double previous = 0;
  bool reached_high = false;
  for (int a = 2; a < 200; ++a) {
    double d = p.Delay(a, previous, -1, rng);
    CHECK(d >= 1);
    CHECK(d <= std::min(100.0, std::max(1.0, previous) * 3));
    reached_high = reached_high || d > 50;
    previous = d;
  }
  CHECK(reached_high);
  // A previous delay stretched by a long Retry-After cannot overflow prev * 3.
  for (double huge : {1e300, std::numeric_limits<double>::max()}) {
    double d = p.Delay(3, huge, -1, rng);
    CHECK(std::isfinite(d));
    CHECK((d >= 1 && d <= 100));
  }
  // Base 0: nothing to grow from.
  p.base = 0;
  CHECK(p.Delay(2, 0, -1, rng) == 0);
  CHECK(p.Delay(1000000, 0, -1, rng) == 0);
}

}  // namespace keel
