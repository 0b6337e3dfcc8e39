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
//
// Each outstanding probe holds a ProbeLease that its process renews while the
// probe runs, so `probes` bounds the probes running at once across every
// process sharing the snapshot, however long a probe takes. A slot is freed
// when its probe reports (RecordOutcome or ReleaseProbe), or, so that a dead
// process cannot keep the breaker half-open for good, when the lease's owner
// is found dead or the lease was not renewed for `lease` seconds.
// Free functions; the caller serializes access to a snapshot.

#include <cstdint>
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
  double failure_rate = 0;  // 0: off; else 0 < rate <= 1
  double window = 60;       // seconds, for failure_rate
  int min_calls = 5;        // calls in the window before the rate counts
  double cooldown = 30;     // seconds OPEN before the first probe
  double factor = 2;        // cooldown growth after a failed probe
  double max_cooldown = 600;
  int probes = 1;     // calls let through at once in HALF_OPEN
  int successes = 1;  // successful probes needed to close
};

enum class BreakerState { kClosed, kOpen, kHalfOpen };
std::string_view BreakerStateName(BreakerState state);
bool ParseBreakerState(std::string_view name, BreakerState* state);

// One HALF_OPEN call let through and not yet reported.
struct ProbeLease {
  int64_t id = 0;         // unique among the breaker's probes; never 0
  Owner owner;            // the process running the probe
  double started_at = 0;  // when it was let through
  double renewed_at = 0;  // when its process last renewed the lease
};

struct BreakerSnapshot {
  BreakerState state = BreakerState::kClosed;
  int consecutive_failures = 0;
  int probe_successes = 0;         // successful probes in this HALF_OPEN period
  double opened_at = 0;            // when it last opened
  double cooldown = 0;             // the cooldown in force (0 until first opened)
  std::vector<ProbeLease> probes;  // outstanding HALF_OPEN calls, oldest first
  int64_t calls = 0;               // lifetime totals, for health
  int64_t failed = 0;
  // Outcomes in the rate window, oldest first: time, and 1 for a failure.
  // Kept only when the breaker has a failure_rate.
  std::vector<std::pair<double, int>> recent;
  // The configuration of the last call that admitted or recorded through
  // it (key empty until then), for what `keel breakers` shows.
  BreakerConfig config;
};

enum class Admission { kAllowed, kProbe, kRejected };

// What a call changed, for events ("breaker_opened", ...); kNone when nothing.
enum class BreakerTransition { kNone, kOpened, kHalfOpened, kClosed, kReopened };
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

// Decides whether a call may go ahead at `now`. On kProbe the call holds a
// slot under `claim.id` until it reports. On kRejected, *retry_in is the time
// until a probe may go (a guess, when every slot is held: the cooldown). Sets
// *transition when OPEN turned HALF_OPEN.
Admission Admit(BreakerSnapshot& s, const BreakerConfig& c, double now, const ProbeClaim& claim,
                double* retry_in, BreakerTransition* transition);

// Records the outcome of an admitted call: `probe` is the claim's id when
// Admit said kProbe, else 0. A probe whose slot was freed in the meantime
// (lease lost, breaker reset or re-opened) counts as an ordinary call.
BreakerTransition RecordOutcome(BreakerSnapshot& s, const BreakerConfig& c, bool success,
                                int64_t probe, double now);
// A probe is named by its id, not a flag.
template <typename Flag, typename = std::enable_if_t<std::is_same_v<Flag, bool>>>
BreakerTransition RecordOutcome(BreakerSnapshot& s, const BreakerConfig& c, bool success,
                                Flag probe, double now) = delete;

// Renews probe `id`'s lease at `now`. False when it holds no slot any more
// (then there is nothing left to renew).
bool RenewProbe(BreakerSnapshot& s, int64_t id, double now);

// Frees probe `id`'s slot without an outcome (its call was abandoned). False
// when it held none.
bool ReleaseProbe(BreakerSnapshot& s, int64_t id);

// Percentage of successful calls in the rate window (lifetime when the window
// is empty); 100 with no calls at all.
double HealthPercent(const BreakerSnapshot& s);

}  // namespace keel
