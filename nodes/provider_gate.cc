#include "nodes/provider_gate.h"

#include <algorithm>
#include <limits>
#include <utility>
#include <vector>

#include "engine/mutex.h"

namespace keel {
namespace {

constexpr double kNever = std::numeric_limits<double>::infinity();
// Slack for float error when a bucket refills to exactly what the head needs,
// and the shortest timer, so that a timer never re-arms for the same instant.
constexpr double kSlack = 1e-6;

// A token bucket holding one second's worth of its per-minute rate, refilled
// continuously. Guarded by the gate's mutex.
struct Bucket {
  double rate = 0;      // per second; 0: unlimited
  double capacity = 0;  // at least 1
  double level = 0;     // may go negative when a call costs more than it held

  void Init(double per_minute) {
    if (per_minute <= 0) return;
    rate = per_minute / 60;
    capacity = std::max(1.0, rate);
    level = capacity;
  }
  void Refill(double elapsed) {
    if (rate > 0) level = std::min(capacity, level + elapsed * rate);
  }
  // Seconds until the level reaches `needed`; 0 when it already has.
  double Wait(double needed) const {
    if (rate == 0 || level >= needed) return 0;
    return (needed - level) / rate;
  }
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

void Deliver(std::vector<Outcome>& outcomes) {
  for (auto& outcome : outcomes) {
    if (outcome.subscription != 0) outcome.cancel->Unsubscribe(outcome.subscription);
    outcome.admitted(std::move(outcome.status));
  }
}

}  // namespace

// The gate's state, shared with the clock timer and cancel callbacks, which
// may run after the gate is gone.
struct ProviderGate::Impl : std::enable_shared_from_this<ProviderGate::Impl> {
  Impl(Clock* c, GateLimits l) : clock(c), limits(l) {
    rpm.Init(l.rpm);
    tpm.Init(l.tpm);
    refilled_at = clock->Now();
  }

  void Refill(double now) EXCLUSIVE_LOCKS_REQUIRED(mu) {
    rpm.Refill(now - refilled_at);
    tpm.Refill(now - refilled_at);
    refilled_at = std::max(refilled_at, now);
  }
  bool SlotFree() const EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return limits.max_concurrency <= 0 || in_flight < limits.max_concurrency;
  }
  // Whether a call may start now (after Refill).
  bool CanAdmit() const EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return SlotFree() && (rpm.rate == 0 || rpm.level >= 1 - kSlack) &&
           (tpm.rate == 0 || tpm.level > 0);
  }
  void Admit(int64_t estimate) EXCLUSIVE_LOCKS_REQUIRED(mu) {
    ++in_flight;
    if (rpm.rate > 0) rpm.level -= 1;
    if (tpm.rate > 0) tpm.level -= static_cast<double>(estimate);
  }

  // Times out expired waiters, admits from the head while it may start, and
  // re-arms the timer; collects the callbacks to make.
  void Pump(std::vector<Outcome>& outcomes) EXCLUSIVE_LOCKS_REQUIRED(mu);
  void Arm(double now) EXCLUSIVE_LOCKS_REQUIRED(mu);
  void OnTimer(uint64_t generation) LOCKS_EXCLUDED(mu);
  void OnCancel(uint64_t waiter) LOCKS_EXCLUDED(mu);

  Clock* const clock;
  const GateLimits limits;
  Mutex mu;
  Bucket rpm GUARDED_BY(mu);
  Bucket tpm GUARDED_BY(mu);
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
};

void ProviderGate::Impl::Pump(std::vector<Outcome>& outcomes) {
  double now = clock->Now();
  Refill(now);
  for (auto it = queue.begin(); it != queue.end();) {
    if (it->deadline > 0 && now >= it->deadline) {
      outcomes.push_back(
          {std::move(it->admitted),
           Status::Error(ErrorKind::kTimeout, "timed out waiting for the provider's rate limit"),
           it->cancel, it->subscription});
      it = queue.erase(it);
    } else {
      ++it;
    }
  }
  while (!queue.empty() && CanAdmit()) {
    Waiter& head = queue.front();
    Admit(head.estimate);
    outcomes.push_back({std::move(head.admitted), Status::Ok(), head.cancel, head.subscription});
    queue.pop_front();
  }
  Arm(now);
}

// One timer, for the earliest of: the head may start (when a slot is free and
// only the buckets hold it back) and a waiter's deadline.
void ProviderGate::Impl::Arm(double now) {
  double due = kNever;
  if (!queue.empty()) {
    if (SlotFree()) {
      double wait = std::max(rpm.Wait(1), tpm.rate > 0 && tpm.level <= 0 ? tpm.Wait(0) : 0.0);
      due = now + std::max(wait, 0.0) + kSlack;
    }
    for (const Waiter& waiter : queue) {
      if (waiter.deadline > 0) due = std::min(due, waiter.deadline);
    }
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
  std::vector<Outcome> outcomes;
  {
    MutexLock lock(&mu);
    if (closed || !armed || generation != timer_generation) return;  // replaced meanwhile
    armed = false;
    timer_due = kNever;
    Pump(outcomes);
  }
  Deliver(outcomes);
}

void ProviderGate::Impl::OnCancel(uint64_t waiter) {
  std::vector<Outcome> outcomes;
  {
    MutexLock lock(&mu);
    auto it = std::find_if(queue.begin(), queue.end(),
                           [waiter](const Waiter& w) { return w.id == waiter; });
    if (it == queue.end()) return;  // admitted, timed out or shut down meanwhile
    // The token has dropped this callback already: nothing to unsubscribe.
    outcomes.push_back({std::move(it->admitted),
                        Status::Error(ErrorKind::kCancelled,
                                      "cancelled while waiting for the provider's rate limit"),
                        nullptr, 0});
    queue.erase(it);
    Pump(outcomes);
  }
  Deliver(outcomes);
}

ProviderGate::ProviderGate(Clock* clock, GateLimits limits)
    : impl_(std::make_shared<Impl>(clock, limits)) {}

ProviderGate::~ProviderGate() {
  std::vector<Outcome> outcomes;
  {
    MutexLock lock(&impl_->mu);
    impl_->closed = true;
    if (impl_->armed) impl_->clock->Cancel(impl_->timer);
    impl_->armed = false;
    for (Waiter& waiter : impl_->queue) {
      outcomes.push_back({std::move(waiter.admitted),
                          Status::Error(ErrorKind::kCancelled, "provider gate closed"),
                          waiter.cancel, waiter.subscription});
    }
    impl_->queue.clear();
  }
  Deliver(outcomes);
}

void ProviderGate::Acquire(int64_t estimated_tokens, const CancelToken* cancel, double deadline,
                           std::function<void(Status)> admitted) {
  Impl& impl = *impl_;
  int64_t estimate = std::max<int64_t>(0, estimated_tokens);
  uint64_t id = 0;
  {
    MutexLock lock(&impl.mu);
    impl.Refill(impl.clock->Now());
    if (impl.queue.empty() && impl.CanAdmit() && (cancel == nullptr || !cancel->cancelled())) {
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
  std::vector<Outcome> outcomes;
  {
    MutexLock lock(&impl.mu);
    if (cancel != nullptr && cancel->cancelled()) {
      outcomes.push_back({std::move(admitted), Status::Error(ErrorKind::kCancelled, "cancelled"),
                          cancel, subscription});
    } else {
      impl.queue.push_back({id, estimate, cancel, subscription, deadline, std::move(admitted)});
      impl.Pump(outcomes);
    }
  }
  Deliver(outcomes);
}

void ProviderGate::Release(int64_t estimated_tokens, int64_t used_tokens) {
  std::vector<Outcome> outcomes;
  Impl& impl = *impl_;
  {
    MutexLock lock(&impl.mu);
    if (impl.in_flight > 0) --impl.in_flight;
    impl.Refill(impl.clock->Now());
    if (impl.tpm.rate > 0) {
      impl.tpm.level =
          std::min(impl.tpm.capacity,
                   impl.tpm.level -
                       static_cast<double>(used_tokens - std::max<int64_t>(0, estimated_tokens)));
    }
    if (!impl.closed) impl.Pump(outcomes);
  }
  Deliver(outcomes);
}

int ProviderGate::in_flight() const {
  MutexLock lock(&impl_->mu);
  return impl_->in_flight;
}

int ProviderGate::waiting() const {
  MutexLock lock(&impl_->mu);
  return static_cast<int>(impl_->queue.size());
}

}  // namespace keel
