#pragma once
// The decisions behind the write commands `keel cancel`, `keel signal` and
// `keel breakers --reset`, shared with their twins in `keel serve`'s API so
// that both do exactly the same. Each is one store call after its checks.
// Free functions; any thread (the store is safe from any thread).

#include <string>

#include "engine/store.h"

namespace keel {

struct CancelDecision {
  RunRecord run;        // as it was before the cancel
  std::string was;      // its status label then (RunStatusLabel)
  CancelOutcome outcome;
};

// Cancels run `id` (exact or a unique prefix): recorded cancelled at once
// unless a live process owns it, which is asked to stop. Fails (kPermanent,
// writing nothing) for an unknown or ambiguous id or a finished run.
Result<CancelDecision> CancelRunNow(Store& store, const std::string& id, double now);

// Checks that `data` is one JSON value. Fails (kPermanent) with
// "not valid JSON: WHY (at byte N)".
Status CheckSignalData(const std::string& data);

// Sends signal `name` with `data` (JSON, checked) to run `id` (exact or a
// unique prefix); returns the run as it was found. Fails (kPermanent,
// storing nothing) for an empty name, bad JSON, an unknown or ambiguous id
// or a finished run.
Result<RunRecord> SendRunSignal(Store& store, const std::string& id, const std::string& name,
                                const std::string& data, double now);

// Deletes breaker `key`, or every breaker when `key` is empty; returns how
// many went. Fails (kPermanent) when `key` names no breaker.
Result<int64_t> ResetBreakerKeys(Store& store, const std::string& key);

}  // namespace keel
