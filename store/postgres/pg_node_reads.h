#pragma once
// The dashboard's reads of one node and of a map's items in PostgreSQL:
// Store::GetNode, GetNodesInStatus, GetNodeEvents, ListMapItems,
// CountMapItems and GetRunOutline. Each reads through the nodes' primary
// key or the indexes on nodes by status and name and on events by node,
// never the run's whole history, and sorts, pages and counts in SQL.
//
// Free functions; each uses the connection it is given (one thread at a time).

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/store.h"
#include "store/postgres/pg_connection.h"

namespace keel::pg {

Result<std::optional<NodeRecord>> GetNode(Connection& conn, const std::string& run_id,
                                          const std::string& node);

// `limit` <= 0: all.
Result<std::vector<NodeRecord>> GetNodesInStatus(Connection& conn, const std::string& run_id,
                                                 NodeStatus status, int limit);

// `limit` <= 0: all.
Result<std::vector<EventRecord>> GetNodeEvents(Connection& conn, const std::string& run_id,
                                               const std::string& node, int limit);

// Items ordered by index as a number ("m[10]" after "m[9]"); `limit` < 0:
// all; a negative `offset` reads from the first.
Result<Store::ItemPage> ListMapItems(Connection& conn, const std::string& run_id,
                                     const std::string& map, std::optional<NodeStatus> status,
                                     int64_t offset, int limit);

// By map, then status (byte order).
Result<std::vector<Store::ItemCount>> CountMapItems(Connection& conn, const std::string& run_id);

// Read in one REPEATABLE READ transaction, so its parts agree.
Result<Store::RunOutline> GetRunOutline(Connection& conn, const std::string& run_id);

}  // namespace keel::pg
