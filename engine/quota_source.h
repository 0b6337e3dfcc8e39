#pragma once
// QuotaSource: where a rate limiter takes tokens from a bucket it shares with
// other processes and hosts (a provider's `rpm` and `tpm`, shared by every
// process using one database). Keeps nodes/ ignorant of how the bucket is
// stored.
//
// Thread-safety: Take may be called from any thread at any time.

#include <algorithm>
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

class QuotaSource {
 public:
  virtual ~QuotaSource() = default;

  // Asks bucket `key` (refilled at `rate_per_s` up to `burst` tokens, full
  // when first used) for up to `want` tokens. Calls `done` exactly once, on
  // any thread, possibly before Take returns, with what was taken or why
  // nothing could be (kTransient when asking again later may help,
  // kPermanent when it cannot). Does not block its caller on storage.
  virtual void Take(const std::string& key, double want, double rate_per_s, double burst,
                    std::function<void(Result<QuotaGrant>)> done) = 0;
};

}  // namespace keel
