#pragma once
// Shared rate limits in PostgreSQL: the token bucket rows behind
// Store::TakeQuota and the concurrency lanes behind Store::HoldSlots
// (engine/store.h), used by every process and host using the database.
// Every statement on the quotas and lanes tables is in pg_quota.cc.
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

// The lanes table (schema version 5): one row per holder of a concurrency
// lane, with how many slots it holds until when (the database's clock).
inline constexpr char kLaneTableSql[] = R"sql(
CREATE TABLE lanes (
  key        text NOT NULL,
  holder     text NOT NULL,
  held       integer NOT NULL,
  expires_at double precision NOT NULL,
  PRIMARY KEY (key, holder)
);
)sql";

// Store::HoldSlots in one READ COMMITTED transaction on `conn`: the lane's
// transaction advisory lock (so two holders of one lane take turns), its
// expired holders deleted, the others' slots summed, and the holder's row
// written (deleted when it holds none). Leases on the database's clock.
Result<int> HoldSlots(Connection& conn, const std::string& key, const std::string& holder,
                      int want, int limit, double lease_s);

}  // namespace keel::pg
