#include "engine/circuit_breaker.h"

#include <algorithm>
#include <cmath>
#include <iterator>

namespace keel {
namespace {

constexpr std::string_view kStateNames[] = {"closed",     "open",        "half_open",
                                            "recovering", "forced_open", "disabled"};
constexpr size_t kMaxRecent = 1000;
constexpr size_t kMaxTransitions = 20;
// The failure share that re-opens a recovering breaker that has no rate of
// its own.
constexpr double kRampFailureRate = 0.5;

void Move(BreakerSnapshot& s, BreakerState to, double now) {
  if (s.state == to) return;
  if (s.transitions.size() >= kMaxTransitions) s.transitions.erase(s.transitions.begin());
  s.transitions.push_back(BreakerChange{now, s.state, to});
  s.state = to;
}

// Forgives one open in a row per `stable` seconds closed since it last closed.
void Forgive(BreakerSnapshot& s, const BreakerConfig& c, double now) {
  if (s.open_streak == 0 || c.stable <= 0 || now <= s.stable_since) return;
  double periods = std::floor((now - s.stable_since) / c.stable);
  if (periods >= s.open_streak) {
    s.open_streak = 0;
  } else {
    s.open_streak -= static_cast<int>(periods);
  }
}

void Open(BreakerSnapshot& s, const BreakerConfig& c, double now, double cooldown) {
  Move(s, BreakerState::kOpen, now);
  s.opened_at = now;
  s.cooldown = std::min(cooldown, c.max_cooldown);
  s.probes.clear();
  s.probe_successes = 0;
  ++s.open_streak;
}

// The cooldown of the open_streak-th open in a row of an adaptive breaker.
double AdaptiveCooldown(const BreakerConfig& c, int streak) {
  return c.cooldown * std::pow(c.factor, std::max(0, streak));
}

// CLOSED -> OPEN.
BreakerTransition Trip(BreakerSnapshot& s, const BreakerConfig& c, double now) {
  Forgive(s, c, now);
  Open(s, c, now, c.adaptive ? AdaptiveCooldown(c, s.open_streak) : c.cooldown);
  return BreakerTransition::kOpened;
}

// HALF_OPEN or RECOVERING -> OPEN.
BreakerTransition Reopen(BreakerSnapshot& s, const BreakerConfig& c, double now) {
  double cooldown = c.adaptive ? AdaptiveCooldown(c, s.open_streak)
                               : std::max(s.cooldown, c.cooldown) * c.factor;
  Open(s, c, now, cooldown);
  return BreakerTransition::kReopened;
}

BreakerTransition Close(BreakerSnapshot& s, double now) {
  Move(s, BreakerState::kClosed, now);
  s.consecutive_failures = 0;
  s.cooldown = 0;
  s.probes.clear();
  s.recent.clear();
  s.stable_since = now;
  return BreakerTransition::kClosed;
}

// Frees the slots of probes whose process died or stopped renewing.
void ExpireProbes(BreakerSnapshot& s, double now, const ProbeClaim& claim) {
  auto stale = [&](const ProbeLease& p) {
    return now - p.renewed_at > claim.lease || (claim.alive && !claim.alive(p, now));
  };
  s.probes.erase(std::remove_if(s.probes.begin(), s.probes.end(), stale), s.probes.end());
}

bool TakeProbe(BreakerSnapshot& s, int64_t id) {
  if (id == 0) return false;
  auto it = std::find_if(s.probes.begin(), s.probes.end(),
                         [&](const ProbeLease& p) { return p.id == id; });
  if (it == s.probes.end()) return false;
  s.probes.erase(it);
  return true;
}

void Remember(BreakerSnapshot& s, const BreakerConfig& c, double now, int flags) {
  if (c.window > 0) {
    while (!s.recent.empty() && s.recent.front().at <= now - c.window) s.recent.pop_front();
  }
  s.recent.push_back(WindowCall{now, flags});
  size_t cap = c.window_calls > 0 ? std::min<size_t>(c.window_calls, kMaxRecent) : kMaxRecent;
  while (s.recent.size() > cap) s.recent.pop_front();
}

// Whether the share of window calls with `flag` reaches `rate`.
bool ShareReached(const BreakerSnapshot& s, const BreakerConfig& c, int flag, double rate) {
  if (rate <= 0 || static_cast<int>(s.recent.size()) < c.min_calls) return false;
  int64_t hits = 0;
  for (const WindowCall& r : s.recent) hits += (r.flags & flag) != 0;
  return static_cast<double>(hits) >= rate * static_cast<double>(s.recent.size());
}

// Whether the window's failures or slow calls call for opening.
bool RateTripped(const BreakerSnapshot& s, const BreakerConfig& c, int flags, double failure_rate) {
  return ((flags & WindowCall::kFailed) && ShareReached(s, c, WindowCall::kFailed, failure_rate)) ||
         ((flags & WindowCall::kSlow) && ShareReached(s, c, WindowCall::kSlow, c.slow_rate));
}

void Learn(BreakerSnapshot& s, const BreakerConfig& c, bool failed) {
  double keep = std::exp2(-1.0 / std::max(c.half_life, 1.0));
  s.baseline = keep * s.baseline + (1 - keep) * (failed ? 1.0 : 0.0);
  s.baseline_weight = keep * s.baseline_weight + (1 - keep);
}

// Counts the outcome in the statistics, the learned rate and the window;
// returns its window flags.
int Count(BreakerSnapshot& s, const BreakerConfig& c, const CallOutcome& o, double now) {
  ++s.calls;
  int flags = 0;
  if (o.success) {
    ++s.consecutive_successes;
    s.consecutive_failures = 0;
    s.last_success_at = now;
  } else {
    ++s.failed;
    ++s.consecutive_failures;
    s.consecutive_successes = 0;
    s.last_failure_at = now;
    flags |= WindowCall::kFailed;
  }
  if (o.timeout) ++s.timeouts;
  if (c.slow_seconds > 0 && o.seconds >= c.slow_seconds) {
    ++s.slow;
    flags |= WindowCall::kSlow;
  }
  if (c.adaptive) Learn(s, c, !o.success);
  if (KeepsWindow(c)) Remember(s, c, now, flags);
  return flags;
}

Admission Reject(BreakerSnapshot& s, double* retry_in, double wait) {
  ++s.rejected;
  *retry_in = wait;
  return Admission::kRejected;
}

}  // namespace

std::string_view BreakerStateName(BreakerState state) {
  return kStateNames[static_cast<int>(state)];
}

bool ParseBreakerState(std::string_view name, BreakerState* state) {
  for (size_t i = 0; i < std::size(kStateNames); ++i) {
    if (kStateNames[i] == name) {
      *state = static_cast<BreakerState>(i);
      return true;
    }
  }
  return false;
}

std::string_view BreakerTransitionName(BreakerTransition t) {
  switch (t) {
    case BreakerTransition::kOpened:
      return "breaker_opened";
    case BreakerTransition::kHalfOpened:
      return "breaker_half_open";
    case BreakerTransition::kRecovering:
      return "breaker_recovering";
    case BreakerTransition::kClosed:
      return "breaker_closed";
    case BreakerTransition::kReopened:
      return "breaker_reopened";
    case BreakerTransition::kForcedOpen:
      return "breaker_forced_open";
    case BreakerTransition::kDisabled:
      return "breaker_disabled";
    default:
      return "";
  }
}

Admission Admit(BreakerSnapshot& s, const BreakerConfig& c, double now, const ProbeClaim& claim,
                double* retry_in, BreakerTransition* transition) {
  s.config = c;
  *transition = BreakerTransition::kNone;
  *retry_in = 0;
  switch (s.state) {
    case BreakerState::kClosed:
    case BreakerState::kDisabled:
      return Admission::kAllowed;
    case BreakerState::kForcedOpen:
      return Reject(s, retry_in, 0);
    case BreakerState::kRecovering: {
      if (now >= s.recovering_since + c.ramp) {
        *transition = Close(s, now);
        return Admission::kAllowed;
      }
      s.ramp_credit += RampShare(s, c, now);
      if (s.ramp_credit < 1) return Reject(s, retry_in, 0);
      s.ramp_credit -= 1;
      return Admission::kAllowed;
    }
    case BreakerState::kOpen: {
      double ready_at = s.opened_at + s.cooldown;
      if (now < ready_at) return Reject(s, retry_in, ready_at - now);
      Move(s, BreakerState::kHalfOpen, now);
      s.probes.clear();
      s.probe_successes = 0;
      *transition = BreakerTransition::kHalfOpened;
      break;
    }
    case BreakerState::kHalfOpen:
      break;
  }
  // A probe whose process died never reports; its slot goes once that is
  // known, so the breaker cannot stay stuck half-open.
  ExpireProbes(s, now, claim);
  if (static_cast<int>(s.probes.size()) >= c.probes) {
    // The running probes may take any time; ask again after a cooldown.
    return Reject(s, retry_in, std::max(s.cooldown, 1.0));
  }
  ProbeLease lease;
  lease.id = claim.id;
  lease.owner = claim.owner;
  lease.started_at = lease.renewed_at = now;
  s.probes.push_back(std::move(lease));
  return Admission::kProbe;
}

BreakerTransition RecordOutcome(BreakerSnapshot& s, const BreakerConfig& c,
                                const CallOutcome& outcome, int64_t probe, double now) {
  const int flags = Count(s, c, outcome, now);
  if (s.state == BreakerState::kHalfOpen && TakeProbe(s, probe)) {
    if (!outcome.success || (flags & WindowCall::kSlow)) return Reopen(s, c, now);
    if (++s.probe_successes < c.successes) return BreakerTransition::kNone;
    if (c.ramp <= 0) return Close(s, now);
    Move(s, BreakerState::kRecovering, now);
    s.recovering_since = now;
    s.ramp_credit = 1;  // the first call after the probes goes through
    s.consecutive_failures = 0;
    s.probes.clear();
    s.recent.clear();
    return BreakerTransition::kRecovering;
  }
  if (s.state != BreakerState::kClosed && s.state != BreakerState::kRecovering) {
    return BreakerTransition::kNone;
  }
  if (flags == 0) return BreakerTransition::kNone;
  if (s.state == BreakerState::kRecovering) {
    double rate = EffectiveFailureRate(s, c);
    bool tripped = s.consecutive_failures >= c.failures ||
                   RateTripped(s, c, flags, rate > 0 ? rate : kRampFailureRate);
    return tripped ? Reopen(s, c, now) : BreakerTransition::kNone;
  }
  if (s.consecutive_failures >= c.failures ||
      RateTripped(s, c, flags, EffectiveFailureRate(s, c))) {
    return Trip(s, c, now);
  }
  return BreakerTransition::kNone;
}

bool RenewProbe(BreakerSnapshot& s, int64_t id, double now) {
  for (ProbeLease& p : s.probes) {
    if (p.id == id && id != 0) {
      p.renewed_at = std::max(p.renewed_at, now);
      return true;
    }
  }
  return false;
}

bool ReleaseProbe(BreakerSnapshot& s, int64_t id) { return TakeProbe(s, id); }

BreakerTransition SetOperatorState(BreakerSnapshot& s, BreakerState target, double now) {
  switch (target) {
    case BreakerState::kForcedOpen:
    case BreakerState::kDisabled:
      if (s.state == target) return BreakerTransition::kNone;
      Move(s, target, now);
      s.probes.clear();
      s.probe_successes = 0;
      return target == BreakerState::kForcedOpen ? BreakerTransition::kForcedOpen
                                                 : BreakerTransition::kDisabled;
    default:
      s.open_streak = 0;
      if (s.state == BreakerState::kClosed) return BreakerTransition::kNone;
      s.consecutive_failures = 0;
      return Close(s, now);
  }
}

bool KeepsWindow(const BreakerConfig& c) {
  return c.failure_rate > 0 || c.slow_rate > 0 || c.adaptive || c.ramp > 0;
}

double HealthPercent(const BreakerSnapshot& s) {
  if (!s.recent.empty()) {
    int64_t failed = 0;
    for (const WindowCall& r : s.recent) failed += (r.flags & WindowCall::kFailed) != 0;
    return 100.0 * static_cast<double>(s.recent.size() - failed) / s.recent.size();
  }
  if (s.calls == 0) return 100.0;
  return 100.0 * (s.calls - s.failed) / s.calls;
}

double LearnedFailureRate(const BreakerSnapshot& s) {
  return s.baseline_weight > 0 ? s.baseline / s.baseline_weight : 0;
}

double EffectiveFailureRate(const BreakerSnapshot& s, const BreakerConfig& c) {
  if (!c.adaptive) return c.failure_rate;
  return std::min(1.0, std::max(c.failure_rate, LearnedFailureRate(s) + c.margin));
}

double NextCooldown(const BreakerSnapshot& s, const BreakerConfig& c, double now) {
  if (!c.adaptive) return std::min(c.cooldown, c.max_cooldown);
  BreakerSnapshot forgiven;
  forgiven.open_streak = s.open_streak;
  forgiven.stable_since = s.stable_since;
  if (s.state == BreakerState::kClosed) Forgive(forgiven, c, now);
  return std::min(AdaptiveCooldown(c, forgiven.open_streak), c.max_cooldown);
}

double RampShare(const BreakerSnapshot& s, const BreakerConfig& c, double now) {
  if (s.state != BreakerState::kRecovering || c.ramp <= 0) return 1;
  double progress = std::clamp((now - s.recovering_since) / c.ramp, 0.0, 1.0);
  return c.ramp_start + (1 - c.ramp_start) * progress;
}

}  // namespace keel
