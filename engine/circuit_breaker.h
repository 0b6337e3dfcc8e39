#pragma once
// Circuit breaker logic (DESIGN.md section 4) as pure functions over a
// BreakerSnapshot, so the same code runs in memory and inside a store
// transaction that several processes share.
//
// CLOSED -> OPEN after `failures` consecutive failures, or when the failure
// rate over the last `window` seconds reaches `failure_rate` (with at least
// `min_calls` calls in the window). OPEN rejects calls until `cooldown`
// passes, then HALF_OPEN lets `probes` calls through at once; `successes`
// successful probes close it, one failed probe re-opens it with the cooldown
// multiplied by `factor`, up to `max_cooldown`. Times are wall seconds.
// Free functions; the caller serializes access to a snapshot.

#include <string>
#include <string_view>
#include <vector>

namespace keel {

struct BreakerConfig {
  std::string key;
  int failures = 5;
  double failure_rate = 0;  // 0: off; else 0 < rate <= 1
  double window = 60;       // seconds, for failure_rate
  int min_calls = 5;        // calls in the window before the rate counts
  double cooldown = 30;     // seconds OPEN before the first probe
  double factor = 2;        // cooldown growth after a failed probe
  double max_cooldown = 600;
  int probes = 1;           // calls let through at once in HALF_OPEN
  int successes = 1;        // successful probes needed to close
};

enum class BreakerState { kClosed, kOpen, kHalfOpen };
std::string_view BreakerStateName(BreakerState state);
bool ParseBreakerState(std::string_view name, BreakerState* state);

struct BreakerSnapshot {
  BreakerState state = BreakerState::kClosed;
  int consecutive_failures = 0;
  int probes_out = 0;        // HALF_OPEN calls let through and not yet reported
  int probe_successes = 0;   // successful probes in this HALF_OPEN period
  double opened_at = 0;      // when it last opened
  double cooldown = 0;       // the cooldown in force (0 until first opened)
  double probe_lease = 0;    // when the oldest outstanding probe was let through
  int64_t calls = 0;         // lifetime totals, for health
  int64_t failed = 0;
  // Outcomes in the rate window, oldest first: time, and 1 for a failure.
  // Kept only when the breaker has a failure_rate.
  std::vector<std::pair<double, int>> recent;
};

enum class Admission { kAllowed, kProbe, kRejected };

// What a call changed, for events ("breaker_opened", ...); kNone when nothing.
enum class BreakerTransition { kNone, kOpened, kHalfOpened, kClosed, kReopened };
std::string_view BreakerTransitionName(BreakerTransition t);

// Decides whether a call may go ahead at `now`. On kRejected, *retry_in is
// the time until a probe may go. Sets *transition when OPEN turned HALF_OPEN.
Admission Admit(BreakerSnapshot& s, const BreakerConfig& c, double now, double* retry_in,
                BreakerTransition* transition);

// Records the outcome of an admitted call (`probe` as Admit said).
BreakerTransition RecordOutcome(BreakerSnapshot& s, const BreakerConfig& c, bool success,
                                bool probe, double now);

// Percentage of successful calls in the rate window (lifetime when the window
// is empty); 100 with no calls at all.
double HealthPercent(const BreakerSnapshot& s);

}  // namespace keel
