#pragma once
// QuotaSource: where a rate limiter takes tokens from a bucket it shares with
// other processes and hosts (a provider's `rpm` and `tpm`, shared by every
// process using one database), and where it holds slots of a concurrency
// lane they share (a provider's `max_concurrency`). Keeps nodes/ ignorant of how the bucket is
// stored.
//
// Thread-safety: Take may be called from any thread at any time.

#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>

#include "engine/status.h"

namespace keel {

// What one take from a shared bucket got.
struct QuotaGrant {
  double taken = 0;  // tokens taken: min(want, what the bucket held), >= 0
  // Seconds until the rest of `want` would be there (or, when it is more
  // than the bucket holds, until the bucket is full); 0 when all was taken.
  double wait_s = 0;
  double left = 0;  // tokens the bucket holds after the take
};

// The token bucket arithmetic every store applies to its bucket row, inside
// the transaction that read it: refills `*tokens` by the time since
// `*updated_at` (wall seconds; a clock that stepped back refills nothing)
// at `rate_per_s` up to `burst`, takes min(want, tokens) and moves
// `*updated_at` to `now`. A new row starts with `burst` tokens.
// The lane arithmetic every store applies inside the transaction that read
// the lane: a holder asking for `want` slots of `limit`, while the other
// live holders hold `others`, gets min(want, limit - others), at least 0.
inline int SlotsGranted(int want, int limit, int64_t others) {
  return static_cast<int>(std::max<int64_t>(0, std::min<int64_t>(want, limit - others)));
}

// Refuses (kPermanent) what no store can hold: a limit below 1, a negative
// want, a lease not above 0.
inline Status CheckLane(const std::string& key, int want, int limit, double lease_s) {
  if (limit >= 1 && want >= 0 && lease_s > 0) return Status::Ok();
  return Status::Error(ErrorKind::kPermanent,
                       "concurrency lane " + key +
                           ": the limit must be 1 or more, the lease above 0 and the slots "
                           "wanted 0 or more");
}

inline QuotaGrant TakeFromBucket(double* tokens, double* updated_at, double want, double rate_per_s,
                                 double burst, double now) {
  const double elapsed = std::max(0.0, now - *updated_at);
  *tokens = std::min(burst, *tokens + elapsed * rate_per_s);
  *updated_at = std::max(*updated_at, now);
  QuotaGrant grant;
  grant.taken = std::max(0.0, std::min(want, *tokens));
  *tokens -= grant.taken;
  if (want > grant.taken) {
    grant.wait_s = std::max(0.0, (std::min(want - grant.taken, burst) - *tokens) / rate_per_s);
  }
  grant.left = *tokens;
  return grant;
}

// How long a process's hold on a shared concurrency lane lasts unless it
// asks again (HoldSlots renews it): the slots of a process that died come
// free after this many seconds.
inline constexpr double kSlotLeaseSeconds = 30;

class QuotaSource {
 public:
  virtual ~QuotaSource() = default;

  // Asks concurrency lane `key` (at most `limit` slots held at once by all
  // processes together) for this process to hold `want` slots from now on:
  // more to start calls, fewer to give slots back, the same to renew its
  // lease (kSlotLeaseSeconds). Calls `done` exactly once, on any thread,
  // with how many it holds now: `want`, or as many as the others leave free
  // (0 while they hold all). Errors as for Take. This default shares
  // nothing: kPermanent.
  virtual void HoldSlots(const std::string& key, int want, int limit,
                         std::function<void(Result<int>)> done) {
    done(Status::Error(ErrorKind::kPermanent, "shared concurrency: not supported"));
  }

  // Asks bucket `key` (refilled at `rate_per_s` up to `burst` tokens, full
  // when first used) for up to `want` tokens. Calls `done` exactly once, on
  // any thread, possibly before Take returns, with what was taken or why
  // nothing could be (kTransient when asking again later may help,
  // kPermanent when it cannot). Does not block its caller on storage.
  virtual void Take(const std::string& key, double want, double rate_per_s, double burst,
                    std::function<void(Result<QuotaGrant>)> done) = 0;
};

}  // namespace keel
