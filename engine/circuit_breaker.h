#pragma once
// Circuit breaker logic (DESIGN.md section 4, docs/breakers.md) as pure
// functions over a BreakerSnapshot, so the same code runs in memory and
// inside a store transaction that several processes share.
//
// CLOSED -> OPEN after `failures` consecutive failures, or when the failure
// rate over the window reaches the threshold (with at least `min_calls` calls
// in the window), or when the share of slow calls reaches `slow_rate`. The
// window is the last `window` seconds, the last `window_calls` calls, or
// both. OPEN rejects calls until the cooldown passes, then HALF_OPEN lets
// `probes` calls through at once; `successes` successful probes close it, or,
// with a recovery ramp, make it RECOVERING: for `ramp` seconds it admits a
// share of calls growing from `ramp_start` to 100%, then closes. A failed
// probe, or a failure or slow-call rate over the threshold while recovering,
// re-opens it with the cooldown multiplied by `factor`, up to `max_cooldown`.
//
// Adaptive breakers learn the key's long-run failure rate (a decaying
// average, `half_life` calls) and open at that rate plus `margin`, never
// below `failure_rate`; their cooldown grows by `factor` with each open in a
// row and one step is forgiven per `stable` seconds closed.
//
// Operators may force a breaker open (every call rejected), disable it
// (every call admitted, outcomes still counted) or close it; forced states
// stay until an operator changes them.
//
// Each outstanding probe holds a ProbeLease that its process renews while the
// probe runs, so `probes` bounds the probes running at once across every
// process sharing the snapshot, however long a probe takes. A slot is freed
// when its probe reports (RecordOutcome or ReleaseProbe), or, so that a dead
// process cannot keep the breaker half-open for good, when the lease's owner
// is found dead or the lease was not renewed for `lease` seconds.
// Free functions; the caller serializes access to a snapshot. Times are wall
// seconds.

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "engine/process_owner.h"

namespace keel {

struct BreakerConfig {
  std::string key;
  int failures = 5;
  // Failure share of the window that opens it: 0 off, else 0 < rate <= 1.
  // For an adaptive breaker, the floor of the learned threshold.
  double failure_rate = 0;
  double window = 60;    // seconds the window spans; 0: no time limit
  int window_calls = 0;  // > 0: the window holds the last N calls at most
  int min_calls = 5;     // calls in the window before a rate counts
  double slow_seconds = 0;  // > 0: calls taking at least this long are slow
  double slow_rate = 0;     // > 0: a slow-call share that opens it
  double cooldown = 30;     // seconds OPEN before the first probe
  double factor = 2;        // cooldown growth on each re-open
  double max_cooldown = 600;
  int probes = 1;     // calls let through at once in HALF_OPEN
  int successes = 1;  // successful probes needed to close (or recover)
  double ramp = 0;          // seconds RECOVERING after the probes; 0: close at once
  double ramp_start = 0.1;  // share of calls admitted as the ramp begins
  bool adaptive = false;
  double margin = 0.3;      // adaptive: threshold = long-run rate + margin
  double half_life = 1000;  // adaptive: calls over which old outcomes weigh half
  double stable = 600;      // seconds closed that forgive one open in a row
};

enum class BreakerState { kClosed, kOpen, kHalfOpen, kRecovering, kForcedOpen, kDisabled };
std::string_view BreakerStateName(BreakerState state);
bool ParseBreakerState(std::string_view name, BreakerState* state);

// One HALF_OPEN call let through and not yet reported.
struct ProbeLease {
  int64_t id = 0;         // unique among the breaker's probes; never 0
  Owner owner;            // the process running the probe
  double started_at = 0;  // when it was let through
  double renewed_at = 0;  // when its process last renewed the lease
};

// One outcome in the window.
struct WindowCall {
  static constexpr int kFailed = 1;
  static constexpr int kSlow = 2;
  double at = 0;
  int flags = 0;  // kFailed | kSlow
  bool operator==(const WindowCall&) const = default;
};

// One change of state, for the breaker's history.
struct BreakerChange {
  double at = 0;
  BreakerState from = BreakerState::kClosed;
  BreakerState to = BreakerState::kClosed;
  bool operator==(const BreakerChange&) const = default;
};

struct BreakerSnapshot {
  BreakerState state = BreakerState::kClosed;
  int consecutive_failures = 0;
  int consecutive_successes = 0;
  int probe_successes = 0;         // successful probes in this HALF_OPEN period
  double opened_at = 0;            // when it last opened
  double cooldown = 0;             // the cooldown in force (0 until first opened)
  std::vector<ProbeLease> probes;  // outstanding HALF_OPEN calls, oldest first
  // Lifetime statistics.
  int64_t calls = 0;
  int64_t failed = 0;
  int64_t slow = 0;
  int64_t timeouts = 0;
  int64_t rejected = 0;
  double last_success_at = 0;
  double last_failure_at = 0;
  std::vector<BreakerChange> transitions;  // the latest, oldest first
  // Outcomes in the window, oldest first. Kept only when a rate needs them.
  std::deque<WindowCall> recent;
  // RECOVERING: since when, and the admissions the ramp's share owes (a call
  // is admitted when the credit reaches 1).
  double recovering_since = 0;
  double ramp_credit = 0;
  // The long-run failure rate as a decaying average with its weight (the
  // estimate is baseline / baseline_weight), for adaptive breakers.
  double baseline = 0;
  double baseline_weight = 0;
  int open_streak = 0;      // opens in a row, less one per stable period
  double stable_since = 0;  // when it last closed
  // The configuration of the last call that admitted or recorded through
  // it (key empty until then), for what `keel breakers` shows.
  BreakerConfig config;
};

enum class Admission { kAllowed, kProbe, kRejected };

// What a call changed, for events ("breaker_opened", ...); kNone when nothing.
enum class BreakerTransition {
  kNone,
  kOpened,
  kHalfOpened,
  kRecovering,
  kClosed,
  kReopened,
  kForcedOpen,
  kDisabled
};
std::string_view BreakerTransitionName(BreakerTransition t);

// Who asks for a probe slot, and how stale leases are recognised.
struct ProbeClaim {
  int64_t id = 0;     // the new probe's id (non-zero, unique); its handle later
  Owner owner;        // the calling process
  double lease = 30;  // seconds a slot outlives its last renewal
  // Whether the owner of `lease` may still be running it, at `now`; null
  // trusts every owner and frees slots by lease age alone.
  std::function<bool(const ProbeLease& lease, double now)> alive;
};

// How an admitted call ended.
struct CallOutcome {
  // Implicit, so that a plain success flag reads as an outcome.
  CallOutcome(bool ok) : success(ok) {}  // NOLINT(google-explicit-constructor)
  CallOutcome(bool ok, double took, bool timed_out)
      : success(ok), seconds(took), timeout(timed_out) {}
  bool success = true;
  double seconds = 0;    // how long it took
  bool timeout = false;  // it failed by timing out
};

// Decides whether a call may go ahead at `now`. On kProbe the call holds a
// slot under `claim.id` until it reports. On kRejected, *retry_in is the time
// until a probe may go (a guess, when every slot is held: the cooldown; 0
// when recovering or forced open). Sets *transition when the state changed.
Admission Admit(BreakerSnapshot& s, const BreakerConfig& c, double now, const ProbeClaim& claim,
                double* retry_in, BreakerTransition* transition);

// Records the outcome of an admitted call: `probe` is the claim's id when
// Admit said kProbe, else 0. A probe whose slot was freed in the meantime
// (lease lost, breaker reset or re-opened) counts as an ordinary call.
BreakerTransition RecordOutcome(BreakerSnapshot& s, const BreakerConfig& c,
                                const CallOutcome& outcome, int64_t probe, double now);
// A probe is named by its id, not a flag.
template <typename Flag, typename = std::enable_if_t<std::is_same_v<Flag, bool>>>
BreakerTransition RecordOutcome(BreakerSnapshot& s, const BreakerConfig& c,
                                const CallOutcome& outcome, Flag probe, double now) = delete;

// Renews probe `id`'s lease at `now`. False when it holds no slot any more
// (then there is nothing left to renew).
bool RenewProbe(BreakerSnapshot& s, int64_t id, double now);

// Frees probe `id`'s slot without an outcome (its call was abandoned). False
// when it held none.
bool ReleaseProbe(BreakerSnapshot& s, int64_t id);

// An operator's order: `target` is kForcedOpen, kDisabled or kClosed (which
// also ends a forced state and forgives the opens in a row). Returns the
// transition, kNone when the breaker was in that state already.
BreakerTransition SetOperatorState(BreakerSnapshot& s, BreakerState target, double now);

// Percentage of successful calls in the window (lifetime when the window is
// empty); 100 with no calls at all.
double HealthPercent(const BreakerSnapshot& s);

// The failure share of the window that opens the breaker now (the learned
// one for adaptive breakers); 0 when no failure rate applies.
double EffectiveFailureRate(const BreakerSnapshot& s, const BreakerConfig& c);

// The long-run failure rate an adaptive breaker has learned (0 before any
// call).
double LearnedFailureRate(const BreakerSnapshot& s);

// The cooldown the breaker would take if it opened from CLOSED at `now`.
double NextCooldown(const BreakerSnapshot& s, const BreakerConfig& c, double now);

// The share of calls a RECOVERING breaker admits at `now` (1 otherwise).
double RampShare(const BreakerSnapshot& s, const BreakerConfig& c, double now);

// Whether a breaker of configuration `c` keeps the window of outcomes (a
// rate, adaptive or the ramp needs it); without it `recent` stays empty.
bool KeepsWindow(const BreakerConfig& c);

// Re-opens after the first open in a row (0 when it opened once or never).
inline int Reopens(const BreakerSnapshot& s) { return s.open_streak > 1 ? s.open_streak - 1 : 0; }

}  // namespace keel
