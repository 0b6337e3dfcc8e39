#pragma once
// The escalations of distributed runs (schema version 7): a run whose nodes
// ran on `keel worker` processes and that settled failed, its workflow
// having an `on_failure` (engine/escalation.h), gets one `escalations` row
// in the transaction that settles it (EscalationDue, a write of the
// frontier step). Any worker claims a due row with FOR UPDATE SKIP LOCKED,
// bumping its attempt; the claim's lease is its worker's (the workers
// row's heartbeat on the database's clock), so a row whose worker died or
// stopped heartbeating is claimed again. Its escalation_started event is
// recorded when its first claim starts it (StartEscalation), so the run
// shows it escalating; the escalation's records and other events are
// written in one transaction with the row marked done, only while the
// claim is still current: a paused or cut-off worker's late results are
// discarded, and each failed end is escalated and recorded once.
//
// Every claim, commit, discarded commit and hand-back is logged in
// claim_log with its attempt, under the node name "on_failure#N".
//
// Free functions; each takes the connection it is given (one thread at a
// time) and runs its own transaction unless said otherwise.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/status.h"
#include "engine/store.h"
#include "store/postgres/pg_connection.h"

namespace keel::pg {

// One claim of escalation `number` of run `run_id`.
struct EscalationClaim {
  std::string run_id;
  int number = 0;
  int64_t attempt = 0;
  std::string workflow;      // the `on_failure` workflow to run
  std::string error;         // the run's error when it settled failed
  std::string failure_json;  // ctx.failure (EscalationFailure)
};

// The read of how many escalations run `run_id` has had (one column, one
// row), for the frontier step that settles it.
Statement LastEscalationRead(const std::string& run_id);

// The write that makes escalation `number` of run `run_id` to `workflow`
// due, with the run's `error` and ctx.failure `failure_json`; runs in the
// transaction that settles the run (its row locked).
Statement EscalationDue(const std::string& run_id, int number, const std::string& workflow,
                        const std::string& error, const std::string& failure_json);

// Claims the oldest escalation that is due, or claimed by a worker whose
// heartbeat is older than its lease (or whose row is gone), for worker
// `worker`: one statement (SKIP LOCKED). nullopt when there is none.
Result<std::optional<EscalationClaim>> ClaimEscalation(Connection& conn, const std::string& worker);

// Records `started` (its escalation_started event) for escalation `claim`
// of `worker`, unless an earlier claim of it did, in one transaction of one
// round trip fenced by the claim (keel_escalation_fence). Returns false,
// recording nothing, when `claim` is no longer current.
Result<bool> StartEscalation(Connection& conn, const EscalationClaim& claim,
                             const std::string& worker, const EventRecord& started);

// Writes what escalation `claim` recorded (`records`, `events`) and marks it
// done, in one transaction of one round trip fenced like StartEscalation.
// Returns true once this claim's results are recorded (by this call, or by
// an earlier one whose answer was lost); false, writing nothing but a
// `superseded` line of claim_log, when another claim took it over.
Result<bool> FinishEscalation(Connection& conn, const EscalationClaim& claim,
                              const std::string& worker, const std::vector<NodeRecord>& records,
                              const std::vector<EventRecord>& events);

// Puts escalation `claim` of `worker` back to due, when still current (the
// worker stops without running it to its end).
Status HandBackEscalation(Connection& conn, const std::string& worker,
                          const EscalationClaim& claim);

// The escalations worker `worker` holds claimed now (run_id, number and
// attempt set): one it runs that is not among them was claimed again.
Result<std::vector<EscalationClaim>> CurrentEscalations(Connection& conn,
                                                        const std::string& worker);

// Whether run `run_id` has an escalation that is not done.
Result<bool> EscalationOpen(Connection& conn, const std::string& run_id);

}  // namespace keel::pg
