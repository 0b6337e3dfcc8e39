#pragma once
// The PostgreSQL store's global event cursor: events.cursor, read by
// Store::ReadEventsAfter and LastEventCursor; the per-run event pages of
// Store::GetEventsAfter; and Store::CountState, the present state the
// metrics read beside them.
//
// Cursors are visible in the order they grow: InsertEvents (pg_rows.h) takes
// them under an advisory lock held until its transaction commits, so a
// reader never sees a cursor while a smaller one is still to commit.
//
// Free functions; each uses the connection it is given (one thread at a time).

#include <cstdint>
#include <string>
#include <vector>

#include "engine/store.h"
#include "store/postgres/pg_connection.h"

namespace keel::pg {

// Store::ReadEventsAfter. `limit` < 0: no limit.
Result<std::vector<Store::CursorEvent>> ReadEventsAfter(Connection& conn, int64_t after,
                                                        const std::string& run_id, int limit);

// Store::LastEventCursor: the highest cursor given to an event that has
// committed (or rolled back), never one whose transaction is still open,
// so reading on from it skips nothing. Waits for an event transaction in
// progress to end.
Result<int64_t> LastEventCursor(Connection& conn);

// Store::CountState.
Result<Store::StateCounts> CountState(Connection& conn);

// Store::GetEventsAfter. `limit` < 0: no limit.
Result<std::vector<EventRecord>> GetEventsAfter(Connection& conn, const std::string& run_id,
                                                int64_t after, int limit);

}  // namespace keel::pg
