#pragma once
// ProviderGate: a provider's rate limits and bulkhead — `rpm` and `tpm` token
// buckets and `max_concurrency` — applied to calls without holding a thread.
//
// Acquire() admits a call now (calling `admitted` on the caller's thread) or
// queues it and admits it later from the clock's timer thread (buckets
// refill) or from the thread of the Release that freed a slot. Queued calls
// are admitted in FIFO order. A queued call whose token is cancelled, or whose
// deadline passes, gets `admitted(kCancelled|kTimeout)` instead and leaves
// the queue. Every admitted call must be Released once with the tokens it
// really used (the tpm bucket is charged the estimate at admission and
// corrected then). Destroying the gate ends the calls still waiting with
// kCancelled. Thread-safe; one mutex guards the buckets and the queue.

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>

#include "engine/cancel_token.h"
#include "engine/clock.h"
#include "engine/status.h"

namespace keel {

struct GateLimits {
  int max_concurrency = 0;  // 0: unlimited
  double rpm = 0;           // 0: unlimited
  double tpm = 0;           // 0: unlimited
};

class ProviderGate {
 public:
  ProviderGate(Clock* clock, GateLimits limits);
  ~ProviderGate();

  // `estimated_tokens` is charged to the tpm bucket on admission.
  // `deadline` is a Clock::Now() time (0: none); `cancel` may be null and
  // must outlive the wait.
  void Acquire(int64_t estimated_tokens, const CancelToken* cancel, double deadline,
               std::function<void(Status)> admitted);
  // Ends an admitted call that used `used_tokens` in all.
  void Release(int64_t estimated_tokens, int64_t used_tokens);

  // Calls admitted and not yet released; calls waiting.
  int in_flight() const;
  int waiting() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace keel
