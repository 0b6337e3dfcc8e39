#pragma once
// The PostgreSQL store's signals and cancellation: the transactions behind
// Store::SendSignal, TakeSignal and CancelRun, and the read behind
// CancelRequested. Each decision locks the run's row first, so sends, takes,
// cancels and claims of one run are ordered across processes.
//
// Free functions; each uses the connection it is given (one thread at a
// time) and runs its own transaction.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "engine/store.h"
#include "store/postgres/pg_connection.h"

namespace keel::pg {

// Store::SendSignal.
Status SendSignal(Connection& conn, const std::string& run_id, const std::string& name,
                  const std::string& data_json, double now);

// Store::TakeSignal for a store holding run `run_id` at `held_epoch`:
// refused (kPermanent), taking nothing, when the run's epoch is no longer
// `held_epoch`, the run was deleted or cancelled. `held_epoch` <= 0 (the
// store holds no epoch for the run) skips the epoch check.
Result<std::optional<std::string>> TakeSignal(Connection& conn, const std::string& run_id,
                                              const std::string& name, const std::string& node,
                                              double now, int64_t held_epoch);

// Store::CancelRun. `owner_alive` is called inside the transaction, with the
// run's row locked.
Result<CancelOutcome> CancelRun(Connection& conn, const std::string& run_id, double now,
                                const std::function<bool(const Owner&, double)>& owner_alive);

// Store::CancelRequested: false for a run that does not exist.
Result<bool> CancelRequested(Connection& conn, const std::string& run_id);

}  // namespace keel::pg
