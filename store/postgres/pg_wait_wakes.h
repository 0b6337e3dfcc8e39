#pragma once
// Waking the parked waits of distributed runs (`keel worker`).
//
// A wait node whose signal has not come parks on a worker as it does in one
// process (engine/wait_node.h): its record says `waiting` with what it waits
// for ({"signal": NAME, "due": T} in output_json), its dependents do not
// start, and the run settles `waiting` once nothing else is left. Workers
// look over the waiting nodes of distributed runs a few times a second
// (WakeWaits); one whose signal has arrived (sent with `keel signal` or the
// API, from any host) or whose due time has come (a timer, or a signal
// wait's timeout) is queued ready again and the run is running again, so a
// worker runs the wait once more and it takes the signal, ends on its timer
// or fails on its timeout. The due time stays the one the wait recorded
// when first reached (its wait_started event), so neither a wake nor a
// crash restarts it.
//
// Each run is woken in a transaction of its own that locks the run's row
// first, as commits, signals, resumes and cancels do, and looks again under
// the lock: a wait is woken once, a signal that arrives while the wait is
// being parked is seen by the next look, and a cancelled run is never
// woken.
//
// Free functions; each takes the connection it is given (one thread at a time).

#include <string>
#include <vector>

#include "engine/status.h"
#include "store/postgres/pg_connection.h"

namespace keel::pg {

// The SQL conditions on a waiting node `n` (a row of nodes with status
// 'waiting', its wait recorded as {"signal": NAME, "due": T} in
// output_json), shared by the workers' wakes and `keel serve`'s hand-offs:
// a signal it may take has arrived (one not taken, or taken by it) ...
#define KEEL_WAIT_SIGNALLED                                                      \
  "EXISTS (SELECT 1 FROM signals s WHERE s.run_id = n.run_id AND s.name = "     \
  "keel_json(n.output_json) ->> 'signal' AND (s.taken_by IS NULL OR s.taken_by = " \
  "n.node))"
inline constexpr char kWaitSignalled[] = KEEL_WAIT_SIGNALLED;
// ... or it may go on: signalled, or its due time is at or before $1.
inline constexpr char kWaitDue[] =
    "(" KEEL_WAIT_SIGNALLED " OR coalesce(keel_json_number(keel_json(n.output_json), 'due') "
    "BETWEEN 1e-9 AND $1, false))";
#undef KEEL_WAIT_SIGNALLED

// SQL: the ids (one row each, no order) of the runs that have a waiting node
// which may go on at $1 (kWaitDue), found through the wait indexes of
// schema version 9, so that a look costs what is due, not what waits.
std::string DueWaitRuns();

// A waiting node queued again, and what woke it: "signal" or "timer".
struct WokenWait {
  std::string run_id;
  std::string node;
  std::string by;
};

// Wakes the waiting nodes of up to `max_runs` distributed runs (running or
// waiting) whose signal has arrived or whose due time is at or before
// `now` (wall seconds): their waiting records go, they are queued ready
// (their claim attempts go on), a wait_woken event names what woke each,
// a waiting run is running again, and workers are notified.
Result<std::vector<WokenWait>> WakeWaits(Connection& conn, double now, int max_runs = 32);

}  // namespace keel::pg
