#pragma once
// The PostgreSQL store's schedule ticks: the transaction behind
// Store::RecordScheduleTick and the read behind Store::LastScheduleTicks.
// Every statement on schedule_ticks is here.
//
// Free functions; each uses the connection it is given (one thread at a time).

#include <cstdint>
#include <string>
#include <vector>

#include "engine/store.h"
#include "store/postgres/pg_connection.h"

namespace keel::pg {

// Store::RecordScheduleTick: the tick's primary key decides between
// processes recording one tick at once (INSERT ... ON CONFLICT DO NOTHING
// waits for the other's transaction), and the run is inserted in the same
// transaction (pg_rows.h InsertRun).
Result<Store::TickOutcome> RecordScheduleTick(Connection& conn, const std::string& key,
                                              int64_t tick, const RunRecord& run);

// Store::LastScheduleTicks, by key (byte order).
Result<std::vector<Store::ScheduleTick>> LastScheduleTicks(Connection& conn);

}  // namespace keel::pg
