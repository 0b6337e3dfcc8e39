#pragma once
// The PostgreSQL store's alerts outbox: the transactions behind
// Store::ScanAlerts, ClaimAlerts and CompleteAlert. Every statement that
// touches alert_cursors or alert_outbox is here.
//
// Free functions; each uses the connection it is given (one thread at a
// time) and runs its own transaction.

#include <cstdint>
#include <string>
#include <vector>

#include "engine/store.h"
#include "store/postgres/pg_connection.h"

namespace keel::pg {

// The advisory lock (pg_advisory_xact_lock) a scan holds, so scans by
// several servers run one after another.
constexpr int64_t kAlertScanLock = 0x6b65656c03;

// Store::ScanAlerts.
Result<int64_t> ScanAlerts(Connection& conn, double now, double overlap_s);

// Store::ClaimAlerts: one statement that locks the due rows with FOR UPDATE
// SKIP LOCKED and leases them, so concurrent claimers never take one row
// twice and do not wait for each other. Oldest (next_at, id) first.
Result<std::vector<Store::AlertRow>> ClaimAlerts(Connection& conn, const std::string& owner,
                                                 double now, double lease_s, int limit);

// Store::CompleteAlert.
Result<bool> CompleteAlert(Connection& conn, int64_t id, const std::string& owner, bool delivered,
                           double now, double retry_at, const std::string& error);

}  // namespace keel::pg
