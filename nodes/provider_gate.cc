#include "nodes/provider_gate.h"

#include <algorithm>
#include <atomic>
#include <limits>
#include <random>
#include <utility>
#include <vector>

#include "engine/mutex.h"

namespace keel {
namespace {

constexpr double kNever = std::numeric_limits<double>::infinity();
// Slack for float error when a bucket refills to exactly what the head needs,
// and the shortest timer, so that a timer never re-arms for the same instant.
constexpr double kSlack = 1e-6;
// The shortest wait before asking a shared bucket that came up short again.
constexpr double kQuotaMinPoll = 0.01;
// Waits before the next take are shortened by up to this fraction.
constexpr double kQuotaJitter = 0.2;

// Seeds for the gates' jitter: distinct per gate, the same in every run of a
// test.
uint32_t NextSeed() {
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

}  // namespace

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
  static double Lacks(const Bucket& b, bool tokens) {
    if (b.rate == 0) return 0;
    if (tokens) return b.level > 0 ? 0 : 1 - b.level;
    return b.level >= 1 - kSlack ? 0 : 1 - b.level;
  }
  // Whether a call may start now (after Refill).
  bool CanAdmit(double now) const EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return SlotFree(now) && Lacks(rpm, false) == 0 && Lacks(tpm, true) == 0;
  }
  void Admit(int64_t estimate) EXCLUSIVE_LOCKS_REQUIRED(mu) {
    ++in_flight;
    if (rpm.rate > 0) rpm.level -= 1;
    if (tpm.rate > 0) tpm.level -= static_cast<double>(estimate);
  }

  // Times out expired waiters, admits from the head while it may start,
  // asks the shared buckets for what the head lacks, and re-arms the timer;
  // collects what to do once unlocked.
  void Pump(Effects& effects) EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Asks shared bucket `b` for what the head lacks, when it may.
  void MaybeAsk(Bucket& b, int which, bool tokens, double now, Effects& effects)
      EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Falls back to the local limit for `period` (kNever: for good).
  void FallBack(Bucket& b, double now, double period, const std::string& why)
      EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Asks the shared lane for the slots the calls in flight and waiting
  // need, renews the hold within the lease, gives back what none needs.
  void MaybeHold(double now, Effects& effects) EXCLUSIVE_LOCKS_REQUIRED(mu);
  void LaneFallBack(double now, double period, const std::string& why)
      EXCLUSIVE_LOCKS_REQUIRED(mu);
  void OnHold(uint64_t id, Result<int> held) LOCKS_EXCLUDED(mu);
  void Arm(double now) EXCLUSIVE_LOCKS_REQUIRED(mu);
  void OnTimer(uint64_t generation) LOCKS_EXCLUDED(mu);
  void OnCancel(uint64_t waiter) LOCKS_EXCLUDED(mu);
  void OnGrant(int which, uint64_t id, Result<QuotaGrant> grant) LOCKS_EXCLUDED(mu);
  // Delivers outcomes, then makes the takes.
  void Deliver(Effects& effects) LOCKS_EXCLUDED(mu);

  Clock* const clock;
  const GateLimits limits;
  const SharedQuota shared;
  Mutex mu;
  Bucket rpm GUARDED_BY(mu);
  Bucket tpm GUARDED_BY(mu);
  Lane lane GUARDED_BY(mu);
  double refilled_at GUARDED_BY(mu) = 0;
  int in_flight GUARDED_BY(mu) = 0;
  std::deque<Waiter> queue GUARDED_BY(mu);
  uint64_t next_waiter GUARDED_BY(mu) = 0;
  bool armed GUARDED_BY(mu) = false;  // a timer is pending
  TimerId timer GUARDED_BY(mu) = 0;   // the pending timer, when armed
  double timer_due GUARDED_BY(mu) = kNever;
  // Of the armed timer; older ones are stale when they fire.
  uint64_t timer_generation GUARDED_BY(mu) = 0;
  bool closed GUARDED_BY(mu) = false;  // the gate is gone: nothing more is admitted
  std::string warning GUARDED_BY(mu);  // for TakeWarning
  std::minstd_rand random GUARDED_BY(mu){NextSeed()};
  std::uniform_int_distribution<int> jitter GUARDED_BY(mu){0, 1000};
};

void ProviderGate::Impl::Deliver(Effects& effects) {
  for (auto& outcome : effects.outcomes) {
    if (outcome.subscription != 0) outcome.cancel->Unsubscribe(outcome.subscription);
    outcome.admitted(std::move(outcome.status));
  }
  for (const Ask& ask : effects.asks) {
    std::weak_ptr<Impl> weak = weak_from_this();
    shared.source->Take(ask.key, ask.want, ask.rate, ask.burst,
                        [weak, which = ask.bucket, id = ask.id](Result<QuotaGrant> grant) {
                          if (auto self = weak.lock()) self->OnGrant(which, id, std::move(grant));
                        });
  }
  for (const HoldAsk& hold : effects.holds) {
    std::weak_ptr<Impl> weak = weak_from_this();
    shared.source->HoldSlots(hold.key, hold.want, hold.limit,
                             [weak, id = hold.id](Result<int> held) {
                               if (auto self = weak.lock()) self->OnHold(id, std::move(held));
                             });
  }
}

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

void ProviderGate::Impl::MaybeAsk(Bucket& b, int which, bool tokens, double now, Effects& effects) {
  if (!b.Shared(now)) return;
  if (b.asking) {
    if (now >= b.asked_at + kQuotaAnswerTimeout) {
      FallBack(b, now, kQuotaFallbackSeconds,
               "the database did not answer within " +
                   std::to_string(static_cast<int>(kQuotaAnswerTimeout)) + " s");
    }
    return;
  }
  const double lacks = Lacks(b, tokens);
  if (lacks == 0 || now < b.next_ask) return;
  b.asking = true;
  b.asked_at = now;
  b.asked = std::max(lacks, b.Chunk());
  effects.asks.push_back({which, ++b.ask_id, b.key, b.asked, b.rate, b.capacity});
}

void ProviderGate::Impl::FallBack(Bucket& b, double now, double period, const std::string& why) {
  const bool was_shared = b.Shared(now);
  b.local_until = period == kNever ? kNever : now + period;
  b.level = std::min(b.level, b.capacity);
  if (!was_shared || b.warned) return;
  b.warned = true;
  warning =
      "rate limit " + b.key + " is not shared for now (" + why +
      "): this process keeps to its own limit" +
      (period == kNever ? ""
                        : " and asks again in " + std::to_string(static_cast<int>(period)) + " s");
}

void ProviderGate::Impl::OnGrant(int which, uint64_t id, Result<QuotaGrant> grant) {
  Effects effects;
  {
    MutexLock lock(&mu);
    if (closed) return;
    Bucket& b = which == 0 ? rpm : tpm;
    const double now = clock->Now();
    Refill(now);
    if (id == b.ask_id) b.asking = false;
    if (grant.ok()) {
      b.warned = false;
      if (!b.Shared(now) && b.local_until != kNever) {
        // The database answers again: what the local limit left is not the
        // shared bucket's to spend.
        b.local_until = 0;
        b.level = std::min(b.level, 0.0);
      }
      if (b.Shared(now)) b.level += grant->taken;
      // The next take waits until a chunk is there, not just what the head
      // lacks, so that a saturated bucket is taken from in chunks too, a
      // few times a second, rather than a token at a time. A take that came
      // short (other processes take too) waits at least a chunk's time,
      // jittered (up to kQuotaJitter sooner), so that processes waiting
      // alike do not ask in lockstep with the same one winning every time.
      double wait = std::max(0.0, (b.Chunk() - grant->left) / b.rate);
      if (grant->taken < b.asked - kSlack) {
        wait = std::max(grant->wait_s, b.Chunk() / b.rate) *
               (1 - kQuotaJitter * jitter(random) / 1000.0);
      }
      b.next_ask = wait > 0 ? now + std::max(kQuotaMinPoll, wait) : now;
    } else if (b.Shared(now)) {
      FallBack(b, now,
               grant.status().kind() == ErrorKind::kPermanent ? kNever : kQuotaFallbackSeconds,
               grant.status().message());
    }
    Pump(effects);
  }
  Deliver(effects);
}

void ProviderGate::Impl::Pump(Effects& effects) {
  double now = clock->Now();
  Refill(now);
  for (auto it = queue.begin(); it != queue.end();) {
    if (it->deadline > 0 && now >= it->deadline) {
      effects.outcomes.push_back(
          {std::move(it->admitted),
           Status::Error(ErrorKind::kTimeout, "timed out waiting for the provider's rate limit"),
           it->cancel, it->subscription});
      it = queue.erase(it);
    } else {
      ++it;
    }
  }
  for (;;) {
    while (!queue.empty() && CanAdmit(now)) {
      Waiter& head = queue.front();
      Admit(head.estimate);
      effects.outcomes.push_back(
          {std::move(head.admitted), Status::Ok(), head.cancel, head.subscription});
      queue.pop_front();
    }
    if (queue.empty() || !SlotFree(now)) break;
    // A take that timed out falls back to the local limit, which may admit
    // the head at once.
    const bool rpm_shared = rpm.Shared(now), tpm_shared = tpm.Shared(now);
    MaybeAsk(rpm, 0, false, now, effects);
    MaybeAsk(tpm, 1, true, now, effects);
    if (rpm_shared == rpm.Shared(now) && tpm_shared == tpm.Shared(now)) break;
  }
  // A lane ask that timed out falls back to the local limit, which may
  // admit the head at once.
  const bool lane_shared = lane.Shared(now);
  MaybeHold(now, effects);
  if (lane_shared != lane.Shared(now)) {
    while (!queue.empty() && CanAdmit(now)) {
      Waiter& head = queue.front();
      Admit(head.estimate);
      effects.outcomes.push_back(
          {std::move(head.admitted), Status::Ok(), head.cancel, head.subscription});
      queue.pop_front();
    }
  }
  Arm(now);
}

// One timer, for the earliest of: the head may start (when a slot is free and
// only the buckets hold it back), a shared bucket may be asked again or its
// take has waited too long, and a waiter's deadline.
void ProviderGate::Impl::Arm(double now) {
  double due = kNever;
  if (!queue.empty()) {
    if (SlotFree(now)) {
      double wait = 0;
      auto consider = [&](const Bucket& b, bool tokens) {
        if (Lacks(b, tokens) == 0) return;
        if (!b.Shared(now)) {
          wait = std::max(wait, tokens ? b.Wait(0) : b.Wait(1));
        } else if (b.asking) {
          wait = std::max(wait, b.asked_at + kQuotaAnswerTimeout - now);
        } else {
          wait = std::max(wait, b.next_ask - now);
        }
      };
      consider(rpm, false);
      consider(tpm, true);
      due = now + std::max(wait, 0.0) + kSlack;
    }
    for (const Waiter& waiter : queue) {
      if (waiter.deadline > 0) due = std::min(due, waiter.deadline);
    }
    if (lane.Shared(now) && !SlotFree(now)) {
      due = std::min(due, lane.asking ? lane.asked_at + kQuotaAnswerTimeout
                                      : std::max(lane.next_ask, now) + kSlack);
    }
  }
  if (lane.Shared(now) && lane.held > 0 && !lane.asking) {
    due = std::min(due, std::max(now, lane.renewed_at + kSlotLeaseSeconds / 3) + kSlack);
  }
  if (armed && due >= timer_due && due != kNever) return;  // it fires first and re-arms
  if (armed) clock->Cancel(timer);
  armed = false;
  timer_due = kNever;
  if (due == kNever) return;
  armed = true;
  timer_due = due;
  std::weak_ptr<Impl> weak = weak_from_this();
  uint64_t generation = ++timer_generation;
  timer = clock->After(std::max(due - now, kSlack), [weak, generation] {
    if (auto self = weak.lock()) self->OnTimer(generation);
  });
}

void ProviderGate::Impl::OnTimer(uint64_t generation) {
  Effects effects;
  {
    MutexLock lock(&mu);
    if (closed || !armed || generation != timer_generation) return;  // replaced meanwhile
    armed = false;
    timer_due = kNever;
    Pump(effects);
  }
  Deliver(effects);
}

void ProviderGate::Impl::OnCancel(uint64_t waiter) {
  Effects effects;
  {
    MutexLock lock(&mu);
    auto it = std::find_if(queue.begin(), queue.end(),
                           [waiter](const Waiter& w) { return w.id == waiter; });
    if (it == queue.end()) return;  // admitted, timed out or shut down meanwhile
    // The token has dropped this callback already: nothing to unsubscribe.
    effects.outcomes.push_back(
        {std::move(it->admitted),
         Status::Error(ErrorKind::kCancelled,
                       "cancelled while waiting for the provider's rate limit"),
         nullptr, 0});
    queue.erase(it);
    Pump(effects);
  }
  Deliver(effects);
}

ProviderGate::ProviderGate(Clock* clock, GateLimits limits, SharedQuota shared)
    : impl_(std::make_shared<Impl>(clock, limits, std::move(shared))) {}

ProviderGate::~ProviderGate() {
  Effects effects;
  {
    MutexLock lock(&impl_->mu);
    impl_->closed = true;
    if (impl_->armed) impl_->clock->Cancel(impl_->timer);
    impl_->armed = false;
    for (Waiter& waiter : impl_->queue) {
      effects.outcomes.push_back({std::move(waiter.admitted),
                                  Status::Error(ErrorKind::kCancelled, "provider gate closed"),
                                  waiter.cancel, waiter.subscription});
    }
    impl_->queue.clear();
    // The slots this process held of a shared lane go back now, not when
    // their lease runs out.
    if (impl_->lane.held > 0 && impl_->lane.Shared(impl_->clock->Now())) {
      effects.holds.push_back(
          {++impl_->lane.ask_id, impl_->lane.key, 0, impl_->limits.max_concurrency});
    }
  }
  impl_->Deliver(effects);
}

void ProviderGate::Acquire(int64_t estimated_tokens, const CancelToken* cancel, double deadline,
                           std::function<void(Status)> admitted) {
  Impl& impl = *impl_;
  int64_t estimate = std::max<int64_t>(0, estimated_tokens);
  uint64_t id = 0;
  {
    MutexLock lock(&impl.mu);
    const double now = impl.clock->Now();
    impl.Refill(now);
    if (impl.queue.empty() && impl.CanAdmit(now) && (cancel == nullptr || !cancel->cancelled())) {
      impl.Admit(estimate);
      lock.Unlock();
      admitted(Status::Ok());
      return;
    }
    id = ++impl.next_waiter;
  }
  // Subscribed before the waiter is queued: the callback may run at once (an
  // already cancelled token), and then finds nothing; the check of
  // cancelled() below covers that case.
  uint64_t subscription = 0;
  if (cancel != nullptr) {
    std::weak_ptr<Impl> weak = impl_;
    subscription = cancel->Subscribe([weak, id] {
      if (auto self = weak.lock()) self->OnCancel(id);
    });
  }
  Effects effects;
  {
    MutexLock lock(&impl.mu);
    if (cancel != nullptr && cancel->cancelled()) {
      effects.outcomes.push_back({std::move(admitted),
                                  Status::Error(ErrorKind::kCancelled, "cancelled"), cancel,
                                  subscription});
    } else {
      impl.queue.push_back({id, estimate, cancel, subscription, deadline, std::move(admitted)});
      impl.Pump(effects);
    }
  }
  impl.Deliver(effects);
}

void ProviderGate::Release(int64_t estimated_tokens, int64_t used_tokens) {
  Effects effects;
  Impl& impl = *impl_;
  {
    MutexLock lock(&impl.mu);
    if (impl.in_flight > 0) --impl.in_flight;
    const double now = impl.clock->Now();
    impl.Refill(now);
    if (impl.tpm.rate > 0) {
      impl.tpm.level =
          std::min(impl.tpm.Cap(now),
                   impl.tpm.level -
                       static_cast<double>(used_tokens - std::max<int64_t>(0, estimated_tokens)));
    }
    if (!impl.closed) impl.Pump(effects);
  }
  impl.Deliver(effects);
}

int ProviderGate::in_flight() const {
  MutexLock lock(&impl_->mu);
  return impl_->in_flight;
}

int ProviderGate::waiting() const {
  MutexLock lock(&impl_->mu);
  return static_cast<int>(impl_->queue.size());
}

std::string ProviderGate::TakeWarning() {
  MutexLock lock(&impl_->mu);
  return std::exchange(impl_->warning, std::string());
}

double ProviderGate::rpm_level() const {
  MutexLock lock(&impl_->mu);
  return impl_->rpm.level;
}

double ProviderGate::tpm_level() const {
  MutexLock lock(&impl_->mu);
  return impl_->tpm.level;
}

}  // namespace keel
