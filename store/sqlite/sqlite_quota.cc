// The SQLite store's shared rate limits (schema version 13) and concurrency
// lanes (14): the writer's transactions behind Store::TakeQuota and
// Store::HoldSlots. Every statement on quotas and lanes is here.

#include <cmath>

#include "store/sqlite/sqlite_store.h"
#include "store/sqlite/sqlite_writer.h"

namespace keel {
namespace sqlite {
namespace {

constexpr char kGetQuota[] = "SELECT tokens, updated_at FROM quotas WHERE key = ?1";
constexpr char kPutQuota[] =
    "INSERT INTO quotas (key, tokens, updated_at, rate, burst) VALUES (?1, ?2, ?3, ?4, ?5) "
    "ON CONFLICT (key) DO UPDATE SET tokens = excluded.tokens, updated_at = excluded.updated_at, "
    "rate = excluded.rate, burst = excluded.burst";

constexpr char kDropExpired[] = "DELETE FROM lanes WHERE key = ?1 AND expires_at < ?2";
constexpr char kOthersHeld[] =
    "SELECT coalesce(sum(held), 0) FROM lanes WHERE key = ?1 AND holder <> ?2";
constexpr char kPutHolder[] =
    "INSERT INTO lanes (key, holder, held, expires_at) VALUES (?1, ?2, ?3, ?4) "
    "ON CONFLICT (key, holder) DO UPDATE SET held = excluded.held, expires_at = excluded.expires_at";
constexpr char kDropHolder[] = "DELETE FROM lanes WHERE key = ?1 AND holder = ?2";

// A lane or bucket that could not be written now (disk full, I/O error,
// another process's lock) may be written later: the limiter falls back to
// its own limit for a while and asks again, rather than for good.
Status Retryable(Status status) {
  if (status.ok() || status.kind() == ErrorKind::kTransient) return status;
  return Status::Error(ErrorKind::kTransient, status.message());
}

}  // namespace

Result<int> SqliteWriter::HoldSlots(const std::string& key, const std::string& holder, int want,
                                    int limit, double lease_s, double now) {
  int held = 0;
  const std::string what = "holding slots of concurrency lane " + key;
  Status status = InTransaction(what, [&] {
    Statement drop;
    Status s = drop.Prepare(conn_.get(), kDropExpired);
    if (!s.ok()) return s;
    drop.Bind(1, key).Bind(2, now);
    s = drop.Run(what);
    if (!s.ok()) return s;
    Statement others;
    s = others.Prepare(conn_.get(), kOthersHeld);
    if (!s.ok()) return s;
    others.Bind(1, key).Bind(2, holder);
    int64_t taken = 0;
    if (others.Step(&s, what)) taken = others.Int(0);
    others.Reset();
    if (!s.ok()) return s;
    held = SlotsGranted(want, limit, taken);
    Statement put;
    s = put.Prepare(conn_.get(), held > 0 ? kPutHolder : kDropHolder);
    if (!s.ok()) return s;
    put.Bind(1, key).Bind(2, holder);
    if (held > 0) put.Bind(3, held).Bind(4, now + lease_s);
    return put.Run(what);
  });
  if (!status.ok()) return status;
  return held;
}

Result<QuotaGrant> SqliteWriter::TakeQuota(const std::string& key, double want, double rate_per_s,
                                           double burst, double now) {
  QuotaGrant grant;
  const std::string what = "taking from rate limit " + key;
  Status status = InTransaction(what, [&] {
    Statement get;
    Status s = get.Prepare(conn_.get(), kGetQuota);
    if (!s.ok()) return s;
    get.Bind(1, key);
    double tokens = burst;
    double updated_at = now;
    if (get.Step(&s, what)) {
      tokens = get.Real(0);
      updated_at = get.Real(1);
    }
    get.Reset();
    if (!s.ok()) return s;
    grant = TakeFromBucket(&tokens, &updated_at, want, rate_per_s, burst, now);
    Statement put;
    s = put.Prepare(conn_.get(), kPutQuota);
    if (!s.ok()) return s;
    put.Bind(1, key).Bind(2, tokens).Bind(3, updated_at).Bind(4, rate_per_s).Bind(5, burst);
    return put.Run(what);
  });
  if (!status.ok()) return status;
  return grant;
}

}  // namespace sqlite

Result<int> SqliteStore::HoldSlots(const std::string& key, const std::string& holder, int want,
                                   int limit, double lease_s, double now) {
  if (Status bad = CheckLane(key, want, limit, lease_s); !bad.ok()) return bad;
  int held = 0;
  Status status = CallOnWriter(
      [&](sqlite::SqliteWriter* writer) {
        auto result = writer->HoldSlots(key, holder, want, limit, lease_s, now);
        if (!result.ok()) return result.status();
        held = *result;
        return Status::Ok();
      },
      /*urgent=*/true);
  if (!status.ok()) return sqlite::Retryable(status);
  return held;
}

Result<QuotaGrant> SqliteStore::TakeQuota(const std::string& key, double want, double rate_per_s,
                                          double burst, double now) {
  if (!(rate_per_s > 0) || !(burst > 0) || !std::isfinite(rate_per_s) || !std::isfinite(burst) ||
      !std::isfinite(want)) {
    return Status::Error(ErrorKind::kPermanent,
                         "rate limit " + key + ": rate and burst must be finite and above 0");
  }
  QuotaGrant grant;
  Status status = CallOnWriter(
      [&](sqlite::SqliteWriter* writer) {
        auto result = writer->TakeQuota(key, want, rate_per_s, burst, now);
        if (!result.ok()) return result.status();
        grant = *result;
        return Status::Ok();
      },
      /*urgent=*/true);
  if (!status.ok()) return sqlite::Retryable(status);
  return grant;
}

}  // namespace keel
