#pragma once
// The PostgreSQL store's circuit breakers: the transactions behind
// Store::UpdateBreaker, ListBreakers and ResetBreakers. Every statement on
// the breakers table is here. A snapshot maps to the columns as in the
// SQLite store (window_json, probes_json, config_json, stats_json:
// engine/breaker_codec.h).
//
// Free functions; each uses the connection it is given (one thread at a
// time) and runs its own transaction.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/store.h"
#include "store/postgres/pg_connection.h"

namespace keel::pg {

// Store::UpdateBreaker at wall time `now` (the row's updated_at). The row is
// created closed when missing and locked (INSERT ... ON CONFLICT DO UPDATE
// returns it locked) before `update` sees it, so concurrent callers on any
// connection are ordered and none loses an update. `update` runs again if
// the transaction is retried.
Result<BreakerSnapshot> UpdateBreaker(Connection& conn, const std::string& key,
                                      const std::function<void(BreakerSnapshot&)>& update,
                                      double now);

// Every breaker, by key (byte order, as SQLite sorts).
Result<std::vector<BreakerRow>> ListBreakers(Connection& conn);

// Deletes breaker `key`, or every breaker when `key` is empty. Returns how many.
Result<int64_t> ResetBreakers(Connection& conn, const std::string& key);

}  // namespace keel::pg
