#include "engine/circuit_breaker.h"

#include <algorithm>

namespace keel {
namespace {

constexpr std::string_view kStateNames[] = {"closed", "open", "half_open"};
constexpr size_t kMaxRecent = 1000;

void Open(BreakerSnapshot& s, const BreakerConfig& c, double now, double cooldown) {
  s.state = BreakerState::kOpen;
  s.opened_at = now;
  s.cooldown = std::min(cooldown, c.max_cooldown);
  s.probes.clear();
  s.probe_successes = 0;
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

void Trim(BreakerSnapshot& s, const BreakerConfig& c, double now) {
  auto keep = std::find_if(s.recent.begin(), s.recent.end(),
                           [&](const auto& r) { return r.first > now - c.window; });
  s.recent.erase(s.recent.begin(), keep);
  if (s.recent.size() > kMaxRecent) s.recent.erase(s.recent.begin(), s.recent.end() - kMaxRecent);
}

bool RateTripped(const BreakerSnapshot& s, const BreakerConfig& c) {
  if (c.failure_rate <= 0 || static_cast<int>(s.recent.size()) < c.min_calls) return false;
  int failed = 0;
  for (const auto& r : s.recent) failed += r.second;
  return failed >= c.failure_rate * static_cast<double>(s.recent.size());
}

}  // namespace

std::string_view BreakerStateName(BreakerState state) {
  return kStateNames[static_cast<int>(state)];
}

bool ParseBreakerState(std::string_view name, BreakerState* state) {
  for (int i = 0; i < 3; ++i) {
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
    case BreakerTransition::kClosed:
      return "breaker_closed";
    case BreakerTransition::kReopened:
      return "breaker_reopened";
    default:
      return "";
  }
}

Admission Admit(BreakerSnapshot& s, const BreakerConfig& c, double now, const ProbeClaim& claim,
                double* retry_in, BreakerTransition* transition) {
  s.config = c;
  *transition = BreakerTransition::kNone;
  *retry_in = 0;
  if (s.state == BreakerState::kOpen) {
    double ready_at = s.opened_at + s.cooldown;
    if (now < ready_at) {
      *retry_in = ready_at - now;
      return Admission::kRejected;
    }
    s.state = BreakerState::kHalfOpen;
    s.probes.clear();
    s.probe_successes = 0;
    *transition = BreakerTransition::kHalfOpened;
  }
  if (s.state == BreakerState::kHalfOpen) {
    // A probe whose process died never reports; its slot goes once that is
    // known, so the breaker cannot stay stuck half-open.
    ExpireProbes(s, now, claim);
    if (static_cast<int>(s.probes.size()) >= c.probes) {
      // The running probes may take any time; ask again after a cooldown.
      *retry_in = std::max(s.cooldown, 1.0);
      return Admission::kRejected;
    }
    ProbeLease lease;
    lease.id = claim.id;
    lease.owner = claim.owner;
    lease.started_at = lease.renewed_at = now;
    s.probes.push_back(std::move(lease));
    return Admission::kProbe;
  }
  return Admission::kAllowed;
}

BreakerTransition RecordOutcome(BreakerSnapshot& s, const BreakerConfig& c, bool success,
                                int64_t probe, double now) {
  ++s.calls;
  if (!success) ++s.failed;
  if (c.failure_rate > 0) {
    // Only a rate-based breaker needs the window of recent outcomes.
    Trim(s, c, now);
    s.recent.emplace_back(now, success ? 0 : 1);
  }
  if (s.state == BreakerState::kHalfOpen && TakeProbe(s, probe)) {
    if (!success) {
      Open(s, c, now, std::max(s.cooldown, c.cooldown) * c.factor);
      return BreakerTransition::kReopened;
    }
    if (++s.probe_successes >= c.successes) {
      s.state = BreakerState::kClosed;
      s.consecutive_failures = 0;
      s.cooldown = 0;
      s.probes.clear();
      s.recent.clear();
      return BreakerTransition::kClosed;
    }
    return BreakerTransition::kNone;
  }
  if (s.state != BreakerState::kClosed) return BreakerTransition::kNone;
  s.consecutive_failures = success ? 0 : s.consecutive_failures + 1;
  if (!success && (s.consecutive_failures >= c.failures || RateTripped(s, c))) {
    Open(s, c, now, c.cooldown);
    return BreakerTransition::kOpened;
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

double HealthPercent(const BreakerSnapshot& s) {
  if (!s.recent.empty()) {
    int failed = 0;
    for (const auto& r : s.recent) failed += r.second;
    return 100.0 * (s.recent.size() - failed) / s.recent.size();
  }
  if (s.calls == 0) return 100.0;
  return 100.0 * (s.calls - s.failed) / s.calls;
}

}  // namespace keel
