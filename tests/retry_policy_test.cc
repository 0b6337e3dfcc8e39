#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "engine/retry_policy.h"

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

}  // namespace keel
