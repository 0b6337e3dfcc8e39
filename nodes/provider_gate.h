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
//
// Shared limits: given a QuotaSource (engine/quota_source.h), the rpm and
// tpm buckets are shared with every process using the same source (the
// database). The gate then refills its buckets not by time but by taking
// tokens from the shared buckets "KEY:rpm" and "KEY:tpm" in chunks: only
// when the head call cannot start, for max(what it lacks, a quarter second
// of the rate) tokens, at most one take out per bucket. So a process holds
// at most about one chunk unused, and a busy process takes a few times a
// second, not once per call. Takes go through the source, never under the
// gate's lock. When a take fails, or has not answered within
// kQuotaAnswerTimeout, the bucket falls back to this process's own limit
// (refilled by time, as without a source) for kQuotaFallbackSeconds before
// it asks again (for good when the source says kPermanent), and
// TakeWarning() says so once.
//
// max_concurrency is shared the same way, as lane "KEY:concurrency": the
// gate holds slots of it through the source (QuotaSource::HoldSlots) and
// admits a call only while it holds one free. It asks for what the calls
// in flight and waiting need when the head cannot start (a full lane is
// asked again every kLanePoll, jittered), renews its hold every third of
// kSlotLeaseSeconds, gives back what no call needs as soon as none waits,
// and gives everything back when it is destroyed; the slots of a process
// that died come free when its lease runs out. The same fallback applies.

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "engine/cancel_token.h"
#include "engine/clock.h"
#include "engine/quota_source.h"
#include "engine/status.h"

namespace keel {

struct GateLimits {
  int max_concurrency = 0;  // 0: unlimited
  double rpm = 0;           // 0: unlimited
  double tpm = 0;           // 0: unlimited
};

// Where the rpm and tpm buckets are shared: `source` (null: nowhere, the
// limits are this process's) and the key prefix, "provider:NAME".
struct SharedQuota {
  std::shared_ptr<QuotaSource> source;
  std::string key;
};

inline constexpr double kQuotaAnswerTimeout = 2;     // seconds
inline constexpr double kQuotaFallbackSeconds = 10;  // seconds
// A chunk is this many seconds of the bucket's rate (at least one token,
// at most its burst).
inline constexpr double kQuotaChunkSeconds = 0.25;
// How long a gate waits before asking a full concurrency lane again
// (jittered up to 20% sooner).
inline constexpr double kLanePoll = 0.1;

class ProviderGate {
 public:
  ProviderGate(Clock* clock, GateLimits limits, SharedQuota shared = {});
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
  // Why the shared limits fell back to this process's own since the last
  // call, once ("" when they did not): for a warning event.
  std::string TakeWarning();
  // Tokens held unused from the shared rpm and tpm buckets (tests).
  double rpm_level() const;
  double tpm_level() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace keel
