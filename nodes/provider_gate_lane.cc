// ProviderGate's shared concurrency lane (see provider_gate.h): asking for
// the slots the calls need, renewing the hold, giving slots back, and the
// fallback to the process's own limit.

#include <algorithm>
#include <string>
#include <utility>

#include "nodes/provider_gate_impl.h"

namespace keel {

using gate_detail::Effects;
using gate_detail::kNever;
using gate_detail::kQuotaJitter;

void ProviderGate::Impl::MaybeHold(double now, Effects& effects) {
  if (!lane.Shared(now)) return;
  if (lane.asking) {
    if (now >= lane.asked_at + kQuotaAnswerTimeout) {
      LaneFallBack(now, kQuotaFallbackSeconds,
                   "the database did not answer within " +
                       std::to_string(static_cast<int>(kQuotaAnswerTimeout)) + " s");
    }
    return;
  }
  const int want =
      std::min(limits.max_concurrency, in_flight + static_cast<int>(queue.size()));
  const bool renew = lane.held > 0 && now >= lane.renewed_at + kSlotLeaseSeconds / 3;
  if (want > lane.held ? now < lane.next_ask && !renew : want == lane.held && !renew) return;
  lane.asking = true;
  lane.asked = want;
  lane.asked_at = now;
  effects.holds.push_back({++lane.ask_id, lane.key, want, limits.max_concurrency});
}

void ProviderGate::Impl::LaneFallBack(double now, double period, const std::string& why) {
  const bool was_shared = lane.Shared(now);
  lane.local_until = period == kNever ? kNever : now + period;
  lane.asking = false;
  if (!was_shared || lane.warned) return;
  lane.warned = true;
  warning = "concurrency limit " + lane.key + " is not shared for now (" + why +
            "): this process keeps to its own limit" +
            (period == kNever
                 ? ""
                 : " and asks again in " + std::to_string(static_cast<int>(period)) + " s");
}

void ProviderGate::Impl::OnHold(uint64_t id, Result<int> held) {
  Effects effects;
  {
    MutexLock lock(&mu);
    if (closed) return;
    const double now = clock->Now();
    Refill(now);
    if (id != lane.ask_id) return;  // a fallback dropped it meanwhile
    const int asked = lane.asked;
    lane.asking = false;
    if (held.ok()) {
      lane.warned = false;
      if (!lane.Shared(now) && lane.local_until != kNever) lane.local_until = 0;
      lane.held = *held;
      lane.renewed_at = now;
      // A full lane is asked again after a poll, jittered so that processes
      // waiting alike do not ask in lockstep.
      lane.next_ask =
          *held < asked ? now + kLanePoll * (1 - kQuotaJitter * jitter(random) / 1000.0) : now;
    } else if (lane.Shared(now)) {
      LaneFallBack(now,
                   held.status().kind() == ErrorKind::kPermanent ? kNever : kQuotaFallbackSeconds,
                   held.status().message());
    }
    Pump(effects);
  }
  Deliver(effects);
}

}  // namespace keel
