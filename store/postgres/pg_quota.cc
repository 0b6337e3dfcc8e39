#include "store/postgres/pg_quota.h"

#include <cmath>

#include "store/postgres/pg_rows.h"

namespace keel::pg {
namespace {

constexpr char kCreateBucket[] =
    "INSERT INTO quotas (key, tokens, updated_at, rate, burst) "
    "VALUES ($1, $2, extract(epoch FROM clock_timestamp()), $3, $2) "
    "ON CONFLICT (key) DO NOTHING";
constexpr char kLockBucket[] = "SELECT tokens, updated_at FROM quotas WHERE key = $1 FOR UPDATE";
constexpr char kClock[] = "SELECT extract(epoch FROM clock_timestamp())::double precision";
constexpr char kPutBucket[] =
    "UPDATE quotas SET tokens = $2, updated_at = $3, rate = $4, burst = $5 WHERE key = $1";

constexpr char kLockLane[] = "SELECT pg_advisory_xact_lock(hashtextextended('lane:' || $1, 0))";
constexpr char kDropExpired[] =
    "DELETE FROM lanes WHERE key = $1 AND expires_at < extract(epoch FROM clock_timestamp())";
constexpr char kOthersHeld[] =
    "SELECT coalesce(sum(held), 0) FROM lanes WHERE key = $1 AND holder <> $2";
constexpr char kPutHolder[] =
    "INSERT INTO lanes (key, holder, held, expires_at) "
    "VALUES ($1, $2, $3, extract(epoch FROM clock_timestamp()) + $4) "
    "ON CONFLICT (key, holder) DO UPDATE SET held = excluded.held, expires_at = excluded.expires_at";
constexpr char kDropHolder[] = "DELETE FROM lanes WHERE key = $1 AND holder = $2";

}  // namespace

Result<int> HoldSlots(Connection& conn, const std::string& key, const std::string& holder,
                      int want, int limit, double lease_s) {
  if (Status bad = CheckLane(key, want, limit, lease_s); !bad.ok()) return bad;
  const std::string what = "holding slots of concurrency lane " + key;
  int held = 0;
  Status status = conn.Transaction(
      [&](Connection& c) -> Status {
        auto others = c.Pipeline({{kLockLane, {key}},
                                  {kDropExpired, {key}},
                                  {kOthersHeld, {key, holder}}},
                                 what);
        if (!others.ok()) return others.status();
        held = SlotsGranted(want, limit, (*others)[2].int64(0, 0));
        auto put = held > 0 ? c.Exec(kPutHolder, {key, holder, Num(held), Num(lease_s)}, what)
                            : c.Exec(kDropHolder, {key, holder}, what);
        return put.ok() ? Status::Ok() : put.status();
      },
      what);
  if (!status.ok()) return status;
  return held;
}

Result<QuotaGrant> TakeQuota(Connection& conn, const std::string& key, double want,
                             double rate_per_s, double burst) {
  if (!(rate_per_s > 0) || !(burst > 0) || !std::isfinite(rate_per_s) || !std::isfinite(burst) ||
      !std::isfinite(want)) {
    return Status::Error(ErrorKind::kPermanent,
                         "rate limit " + key + ": rate and burst must be finite and above 0");
  }
  const std::string what = "taking from rate limit " + key;
  QuotaGrant grant;
  Status status = conn.Transaction(
      [&](Connection& c) -> Status {
        auto created = c.Exec(kCreateBucket, {key, Num(burst), Num(rate_per_s)}, what);
        if (!created.ok()) return created.status();
        auto row = c.Exec(kLockBucket, {key}, what);
        if (!row.ok()) return row.status();
        if (row->size() != 1) {
          return Status::Error(ErrorKind::kTransient, what + ": the row went missing");
        }
        double tokens = row->real(0, 0);
        double updated_at = row->real(0, 1);
        auto clock = c.Exec(kClock, {}, what);
        if (!clock.ok()) return clock.status();
        const double now = clock->real(0, 0);
        grant = TakeFromBucket(&tokens, &updated_at, want, rate_per_s, burst, now);
        auto put = c.Exec(kPutBucket,
                          {key, Num(tokens), Num(updated_at), Num(rate_per_s), Num(burst)}, what);
        return put.ok() ? Status::Ok() : put.status();
      },
      what);
  if (!status.ok()) return status;
  return grant;
}

}  // namespace keel::pg
