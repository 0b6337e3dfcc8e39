#pragma once
// ProviderGate's inside (nodes/provider_gate.h): its buckets, its shared
// concurrency lane, its waiters and the state they share, for
// provider_gate.cc (buckets, admission, timers) and provider_gate_lane.cc
// (the shared lane). Not for other callers.

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/mutex.h"
#include "nodes/provider_gate.h"

namespace keel {
namespace gate_detail {

inline constexpr double kNever = std::numeric_limits<double>::infinity();
// Slack for float error when a bucket refills to exactly what the head needs,
// and the shortest timer, so that a timer never re-arms for the same instant.
inline constexpr double kSlack = 1e-6;
// The shortest wait before asking a shared bucket that came up short again.
inline constexpr double kQuotaMinPoll = 0.01;
// Waits before the next take are shortened by up to this fraction.
inline constexpr double kQuotaJitter = 0.2;

// Seeds for the gates' jitter: distinct per gate, the same in every run of a
// test.
inline uint32_t NextSeed() {
  static std::atomic<uint32_t> seed{1};
  return seed.fetch_add(7919, std::memory_order_relaxed);
}

// A token bucket holding one second's worth of its per-minute rate, refilled
// continuously; or, when shared, refilled by takes from the shared bucket of
// the same rate and size (see ProviderGate). Guarded by the gate's mutex.
struct Bucket {
  double rate = 0;      // per second; 0: unlimited
  double capacity = 0;  // at least 1
  double level = 0;     // may go negative when a call costs more than it held

  // Shared: the key of the shared bucket ("" when not shared), and the take
  // in flight.
  std::string key;
  bool asking = false;
  uint64_t ask_id = 0;     // of the latest take
  double asked = 0;        // tokens the latest take asked for
  double asked_at = 0;     // Clock::Now() of the latest take
  double next_ask = 0;     // no take before this Clock::Now() time
  double local_until = 0;  // refilled by time until then (fallback); kNever: for good
  bool warned = false;     // a fallback was reported since the last answer

  void Init(double per_minute, const std::string& shared_key) {
    if (per_minute <= 0) return;
    rate = per_minute / 60;
    capacity = std::max(1.0, rate);
    key = shared_key;
    level = key.empty() ? capacity : 0;  // a shared bucket holds nothing yet
  }
  bool Shared(double now) const { return !key.empty() && now >= local_until; }
  // Refills by the time since `from` it was local.
  void Refill(double from, double now) {
    if (rate == 0) return;
    const double until = key.empty() ? now : std::min(now, local_until);
    if (until > from) level = std::min(capacity, level + (until - from) * rate);
  }
  // Seconds until the level reaches `needed`; 0 when it already has.
  double Wait(double needed) const {
    if (rate == 0 || level >= needed) return 0;
    return (needed - level) / rate;
  }
  // What a take asks for beyond what the head call lacks.
  double Chunk() const { return std::min(capacity, std::max(1.0, rate * kQuotaChunkSeconds)); }
  // The most a bucket keeps: a refund above it is dropped, so a process
  // never holds more than a chunk of the shared bucket unused.
  double Cap(double now) const { return Shared(now) ? Chunk() : capacity; }
};

// The concurrency lane this process shares with others through the source
// (max_concurrency across processes): how many of its slots this process
// holds, asked for when calls wait, renewed within the lease, given back
// when no call needs them. Guarded by the gate's mutex.
struct Lane {
  std::string key;  // "" when not shared
  int held = 0;     // slots held, as the last answer said
  bool asking = false;
  uint64_t ask_id = 0;     // of the latest ask
  int asked = 0;           // slots the latest ask wants held
  double asked_at = 0;     // Clock::Now() of the latest ask
  double next_ask = 0;     // no ask for more before this (a full lane is polled)
  double renewed_at = 0;   // Clock::Now() of the last answer
  double local_until = 0;  // this process's own limit until then (fallback); kNever: for good
  bool warned = false;     // a fallback was reported since the last answer

  bool Shared(double now) const { return !key.empty() && now >= local_until; }
};

// A hold to ask for once the lock is released.
struct HoldAsk {
  uint64_t id = 0;
  std::string key;
  int want = 0;
  int limit = 0;
};

// A take to make once the lock is released.
struct Ask {
  int bucket = 0;  // 0: rpm, 1: tpm
  uint64_t id = 0;
  std::string key;
  double want = 0;
  double rate = 0;
  double burst = 0;
};

// A call waiting for admission.
struct Waiter {
  uint64_t id = 0;
  int64_t estimate = 0;
  const CancelToken* cancel = nullptr;
  uint64_t subscription = 0;  // on `cancel`; 0: none
  double deadline = 0;
  std::function<void(Status)> admitted;
};

// An `admitted` call to make once the lock is released.
struct Outcome {
  std::function<void(Status)> admitted;
  Status status;
  const CancelToken* cancel = nullptr;
  uint64_t subscription = 0;  // to drop before calling
};

// What a locked section decided, to carry out after the lock is released.
struct Effects {
  std::vector<Outcome> outcomes;
  std::vector<Ask> asks;
  std::vector<HoldAsk> holds;
};

}  // namespace gate_detail

// The gate's state, shared with the clock timer and cancel callbacks, which
// may run after the gate is gone.
struct ProviderGate::Impl : std::enable_shared_from_this<ProviderGate::Impl> {
  Impl(Clock* c, GateLimits l, SharedQuota s) : clock(c), limits(l), shared(std::move(s)) {
    const bool on = shared.source != nullptr;
    rpm.Init(l.rpm, on ? shared.key + ":rpm" : "");
    tpm.Init(l.tpm, on ? shared.key + ":tpm" : "");
    if (on && l.max_concurrency > 0) lane.key = shared.key + ":concurrency";
    refilled_at = clock->Now();
  }

  void Refill(double now) EXCLUSIVE_LOCKS_REQUIRED(mu) {
    rpm.Refill(refilled_at, now);
    tpm.Refill(refilled_at, now);
    refilled_at = std::max(refilled_at, now);
  }
  // Whether a call may take a slot: under max_concurrency and, while the
  // lane is shared, under the slots this process holds (the fewer of what it
  // holds and what it asked for while an ask is out, so a give-back never
  // races a start).
  bool SlotFree(double now) const EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (limits.max_concurrency <= 0) return true;
    int cap = limits.max_concurrency;
    if (lane.Shared(now)) cap = std::min(cap, lane.asking ? std::min(lane.held, lane.asked) : lane.held);
    return in_flight < cap;
  }
  // Tokens bucket `b` lacks for the head call to start (0: none).
  static double Lacks(const gate_detail::Bucket& b, bool tokens) {
    if (b.rate == 0) return 0;
    if (tokens) return b.level > 0 ? 0 : 1 - b.level;
    return b.level >= 1 - gate_detail::kSlack ? 0 : 1 - b.level;
  }
  // Whether a call may start now (after Refill).
  bool CanAdmit(double now) const EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return SlotFree(now) && Lacks(rpm, false) == 0 && Lacks(tpm, true) == 0;
  }
  // Admits waiting calls from the head while they may start.
  void AdmitHeads(double now, gate_detail::Effects& effects) EXCLUSIVE_LOCKS_REQUIRED(mu);
  void Admit(int64_t estimate) EXCLUSIVE_LOCKS_REQUIRED(mu) {
    ++in_flight;
    if (rpm.rate > 0) rpm.level -= 1;
    if (tpm.rate > 0) tpm.level -= static_cast<double>(estimate);
  }

  // Times out expired waiters, admits from the head while it may start,
  // asks the shared buckets for what the head lacks, and re-arms the timer;
  // collects what to do once unlocked.
  void Pump(gate_detail::Effects& effects) EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Asks shared bucket `b` for what the head lacks, when it may.
  void MaybeAsk(gate_detail::Bucket& b, int which, bool tokens, double now,
                gate_detail::Effects& effects) EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Falls back to the local limit for `period` (kNever: for good).
  void FallBack(gate_detail::Bucket& b, double now, double period, const std::string& why)
      EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Asks the shared lane for the slots the calls in flight and waiting
  // need, renews the hold within the lease, gives back what none needs.
  void MaybeHold(double now, gate_detail::Effects& effects) EXCLUSIVE_LOCKS_REQUIRED(mu);
  void LaneFallBack(double now, double period, const std::string& why)
      EXCLUSIVE_LOCKS_REQUIRED(mu);
  void OnHold(uint64_t id, Result<int> held) LOCKS_EXCLUDED(mu);
  void Arm(double now) EXCLUSIVE_LOCKS_REQUIRED(mu);
  void OnTimer(uint64_t generation) LOCKS_EXCLUDED(mu);
  void OnCancel(uint64_t waiter) LOCKS_EXCLUDED(mu);
  void OnGrant(int which, uint64_t id, Result<QuotaGrant> grant) LOCKS_EXCLUDED(mu);
  // Delivers outcomes, then makes the takes.
  void Deliver(gate_detail::Effects& effects) LOCKS_EXCLUDED(mu);

  Clock* const clock;
  const GateLimits limits;
  const SharedQuota shared;
  Mutex mu;
  gate_detail::Bucket rpm GUARDED_BY(mu);
  gate_detail::Bucket tpm GUARDED_BY(mu);
  gate_detail::Lane lane GUARDED_BY(mu);
  double refilled_at GUARDED_BY(mu) = 0;
  int in_flight GUARDED_BY(mu) = 0;
  std::deque<gate_detail::Waiter> queue GUARDED_BY(mu);
  uint64_t next_waiter GUARDED_BY(mu) = 0;
  bool armed GUARDED_BY(mu) = false;  // a timer is pending
  TimerId timer GUARDED_BY(mu) = 0;   // the pending timer, when armed
  double timer_due GUARDED_BY(mu) = gate_detail::kNever;
  // Of the armed timer; older ones are stale when they fire.
  uint64_t timer_generation GUARDED_BY(mu) = 0;
  bool closed GUARDED_BY(mu) = false;  // the gate is gone: nothing more is admitted
  std::string warning GUARDED_BY(mu);  // for TakeWarning
  std::minstd_rand random GUARDED_BY(mu){gate_detail::NextSeed()};
  std::uniform_int_distribution<int> jitter GUARDED_BY(mu){0, 1000};
};

}  // namespace keel
