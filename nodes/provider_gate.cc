#include "nodes/provider_gate.h"

#include <algorithm>
#include <utility>

#include "nodes/provider_gate_impl.h"

namespace keel {

using gate_detail::Ask;
using gate_detail::Bucket;
using gate_detail::Effects;
using gate_detail::HoldAsk;
using gate_detail::kNever;
using gate_detail::kQuotaJitter;
using gate_detail::kQuotaMinPoll;
using gate_detail::kSlack;
using gate_detail::Waiter;

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

void ProviderGate::Impl::AdmitHeads(double now, Effects& effects) {
  while (!queue.empty() && CanAdmit(now)) {
    Waiter& head = queue.front();
    Admit(head.estimate);
    effects.outcomes.push_back(
        {std::move(head.admitted), Status::Ok(), head.cancel, head.subscription});
    queue.pop_front();
  }
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
    AdmitHeads(now, effects);
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
  if (lane_shared != lane.Shared(now)) AdmitHeads(now, effects);
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
