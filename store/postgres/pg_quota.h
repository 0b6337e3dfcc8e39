#pragma once
// Shared rate limits in PostgreSQL: the token bucket rows behind
// Store::TakeQuota (engine/store.h), taken by every process and host using
// the database. Every statement on the quotas table is in pg_quota.cc.
//
// Free functions on a Connection the caller lends (one thread at a time, as
// any Connection).

#include <string>

#include "engine/quota_source.h"
#include "engine/status.h"
#include "store/postgres/pg_connection.h"

namespace keel::pg {

// The quotas table, for the PostgreSQL schema's migration list: one row per
// bucket; times are wall seconds of the database's clock. `rate` and
// `burst` are the last taker's, for a reader (every take refills with its
// own).
inline constexpr char kQuotaTableSql[] = R"sql(
CREATE TABLE quotas (
  key        text PRIMARY KEY,
  tokens     double precision NOT NULL,
  updated_at double precision NOT NULL,
  rate       double precision NOT NULL,
  burst      double precision NOT NULL
);
)sql";

// Store::TakeQuota in one READ COMMITTED transaction on `conn`: creates
// bucket `key` full if it is missing (INSERT ... ON CONFLICT DO NOTHING),
// locks its row (SELECT ... FOR UPDATE), reads the database's clock
// (clock_timestamp(), after the lock, so takes are timed in the order they
// hold the row) and applies TakeFromBucket. Retried as Connection::
// Transaction retries. Fails kPermanent for a rate or burst not above 0,
// otherwise as the connection fails (kTransient for a lost connection).
Result<QuotaGrant> TakeQuota(Connection& conn, const std::string& key, double want,
                             double rate_per_s, double burst);

}  // namespace keel::pg
