#pragma once
// RetryPolicy: how many attempts a node gets and how long to wait between
// them (DESIGN.md section 4). A value type; its methods are const and safe
// from any thread (the caller supplies the random source).

#include <cstdint>
#include <random>
#include <vector>

#include "engine/status.h"

namespace keel {

enum class Jitter { kNone, kFull, kEqual, kDecorrelated };

struct RetryPolicy {
  int attempts = 1;     // total attempts, first included; 1 means no retry
  double base = 0.5;    // seconds before the first retry (before jitter)
  double max = 30.0;    // cap on any single delay, seconds
  double factor = 2.0;  // growth per retry
  Jitter jitter = Jitter::kFull;
  // Kinds worth retrying; empty means the default: every kind except
  // permanent, circuit_open and cancelled.
  std::vector<ErrorKind> on;

  // Whether a failure of `kind` may be retried (attempts aside).
  bool Retries(ErrorKind kind) const;

  // The wait before attempt number `next_attempt` (2 for the first retry)
  // before jitter: base * factor^(retries - 1), capped at `max`. Finite,
  // never negative, never above max(0, max), and non-decreasing in
  // `next_attempt` for any base, max and factor (no overflow however many
  // attempts: it reaches `max` and stays there; base 0 stays 0).
  double Backoff(int next_attempt) const;

  // The wait before attempt number `next_attempt`: Backoff with jitter.
  // `previous` is the delay used before the previous attempt (decorrelated
  // jitter grows from it; pass 0 for the first retry; a negative or
  // non-finite one counts as 0). Never above `max`, and never shorter than
  // `retry_after` when that is >= 0, even beyond `max`.
  double Delay(int next_attempt, double previous, double retry_after, std::mt19937_64& rng) const;
};

}  // namespace keel
