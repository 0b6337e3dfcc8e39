#pragma once
// The PostgreSQL store's side of starting and supervising runs: the reads
// that find runs `keel serve` may start or resume (ListRunsToStart) and the
// transactions that hand a run over, give it back and note something about
// a run once (HandOffRun, ReleaseRun, AppendEventOnce). Each decision locks
// the run's row and is fenced by its epoch, so two servers on one database
// never both take a run.
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

// Store::ListRunsToStart. `limit` < 0: no limit.
Result<std::vector<Store::StartCandidate>> ListRunsToStart(Connection& conn, double now,
                                                           bool stopped, int limit);

// Store::HandOffRun; `owner_alive` is called with the run's row locked.
Result<int64_t> HandOffRun(Connection& conn, const std::string& run_id, int64_t expected_epoch,
                           const Owner& to, double now, const EventRecord& event,
                           const std::function<bool(const Owner&, double)>& owner_alive);

// Store::ReleaseRun.
Status ReleaseRun(Connection& conn, const std::string& run_id, int64_t epoch, const Owner& none,
                  double now, const std::string& error);

// Store::AppendEventOnce. Fails (kPermanent) for a run that does not exist.
Status AppendEventOnce(Connection& conn, const EventRecord& event);

}  // namespace keel::pg
