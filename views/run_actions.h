#pragma once
// The decisions behind the write commands `keel cancel`, `keel signal`,
// `keel breakers --reset` and the breakers' operator states, shared with their twins in `keel
// serve`'s API so that both do exactly the same. Each is one store call after its checks. Free
// functions; any thread (the store is safe from any thread).

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
// many went. Fails (kPermanent) when `key` names no breaker, as
// "no breaker 'KEY'" with a did-you-mean among the breakers there are; with
// the store's error when the database fails.
Result<int64_t> ResetBreakerKeys(Store& store, const std::string& key);

// What an operator's order did to a breaker.
struct BreakerOrder {
  BreakerState was = BreakerState::kClosed;  // its state before the order
  // kNone when it was in the ordered state already.
  BreakerTransition transition = BreakerTransition::kNone;
  BreakerSnapshot now;  // as the order left it
};

// Puts breaker `key` in operator state `target` at wall time `now`:
// kForcedOpen (every call rejected), kDisabled (every call admitted, still
// counted) or kClosed (SetOperatorState). Fails (kPermanent, writing
// nothing) for another target or when `key` names no breaker (as
// ResetBreakerKeys does); with the store's error (locked, read-only, full
// disk) when the database fails. A breaker reset between the check and the
// order comes back in the ordered state.
Result<BreakerOrder> OperateBreaker(Store& store, const std::string& key, BreakerState target,
                                    double now);

// Whether `status` is the failure of an action on a key that names no
// breaker (404 in the API, a usage error in the CLI).
bool IsUnknownBreaker(const Status& status);

}  // namespace keel
