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

}  // namespace

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
