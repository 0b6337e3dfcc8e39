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
  s.probes_out = 0;
  s.probe_successes = 0;
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

Admission Admit(BreakerSnapshot& s, const BreakerConfig& c, double now, double* retry_in,
                BreakerTransition* transition) {
  *transition = BreakerTransition::kNone;
  *retry_in = 0;
  if (s.state == BreakerState::kOpen) {
    double ready_at = s.opened_at + s.cooldown;
    if (now < ready_at) {
      *retry_in = ready_at - now;
      return Admission::kRejected;
    }
    s.state = BreakerState::kHalfOpen;
    s.probes_out = 0;
    s.probe_successes = 0;
    *transition = BreakerTransition::kHalfOpened;
  }
  if (s.state == BreakerState::kHalfOpen) {
    // A probe whose process died never reports; its lease runs out after a
    // cooldown so the breaker cannot stay stuck half-open.
    if (s.probes_out > 0 && now - s.probe_lease > std::max(s.cooldown, 1.0)) s.probes_out = 0;
    if (s.probes_out >= c.probes) {
      *retry_in = std::max(0.0, s.probe_lease + std::max(s.cooldown, 1.0) - now);
      return Admission::kRejected;
    }
    if (s.probes_out == 0) s.probe_lease = now;
    ++s.probes_out;
    return Admission::kProbe;
  }
  return Admission::kAllowed;
}

BreakerTransition RecordOutcome(BreakerSnapshot& s, const BreakerConfig& c, bool success,
                                bool probe, double now) {
  ++s.calls;
  if (!success) ++s.failed;
  if (c.failure_rate > 0) {
    // Only a rate-based breaker needs the window of recent outcomes.
    Trim(s, c, now);
    s.recent.emplace_back(now, success ? 0 : 1);
  }
  if (probe && s.state == BreakerState::kHalfOpen) {
    if (s.probes_out > 0) --s.probes_out;
    if (!success) {
      Open(s, c, now, std::max(s.cooldown, c.cooldown) * c.factor);
      return BreakerTransition::kReopened;
    }
    if (++s.probe_successes >= c.successes) {
      s.state = BreakerState::kClosed;
      s.consecutive_failures = 0;
      s.cooldown = 0;
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
