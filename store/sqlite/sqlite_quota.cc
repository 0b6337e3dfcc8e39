// The SQLite store's shared rate limits (schema version 13): the writer's
// transaction behind Store::TakeQuota. Every statement on quotas is here.

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

}  // namespace

Result<QuotaGrant> SqliteWriter::TakeQuota(const std::string& key, double want, double rate_per_s,
                                           double burst, double now) {
  QuotaGrant grant;
  const std::string what = "taking from rate limit " + key;
  Status status = InTransaction([&] {
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
  if (!status.ok()) return status;
  return grant;
}

}  // namespace keel
