#pragma once
// What happens to a run stopped by Ctrl-C (SIGINT) or SIGTERM: the user is
// told how to continue it ("keel: interrupted; resume with: keel resume ID"),
// the run records why it stopped (a callback, which `keel run` uses to write
// the run_interrupted event and the status interrupted), and the process then
// dies of the signal as it would have, so its exit status still says which.
//
// The signal handler only notes the signal. A timer of the given clock looks
// for it every 50 ms and, once it came, hands the rest to a new thread (the
// recording waits for the store, which a timer must not do). No thread is
// added before a signal comes. A second signal ends the process at once.
//
// Once the run has finished executing, SealRunEnd() makes later signals
// ignored until the process exits: the run's own status is then recorded and
// becomes the exit code, so the status, the last event and the exit code
// always agree.
//
// Process-wide state; call every function here from the main thread (the
// one that runs the executor, so that SealRunEnd comes from OnRunFinished).

#include <functional>
#include <string>

#include "engine/clock.h"

namespace keel::cli {

// The database the notice's command names: `db` as given to --db (made
// absolute), so the printed `keel resume ID --db PATH` works from any
// directory; "" (no --db: $KEEL_DB or ./keel.db) names none. Call before
// ArmInterruptNotice.
void SetInterruptNoticeDb(const std::string& db);

// `keel resume RUN_ID`, with `--db PATH` (shell-quoted) when
// SetInterruptNoticeDb named one.
std::string ResumeCommandFor(const std::string& run_id);

// From now on SIGINT and SIGTERM are only noted, until ArmInterruptNotice
// takes over (a signal noted before is then handled as if it came after) or
// ReleaseInterrupts. Covers the moments between a run's creation (or claim)
// and its arming, so that a signal then still records it interrupted.
void HoldInterrupts();

// After a run: restores the actions HoldInterrupts replaced, unless
// SealRunEnd made the signals ignored. A signal noted and never handled (the
// run was not armed) ends the process now, as it would have when it came.
// Nothing happens while armed.
void ReleaseInterrupts();

// From now on, SIGINT and SIGTERM write the notice for `run_id` to file
// descriptor `fd` (none when negative: `record` tells instead), call
// `record(signal_number)` (when set), then end the
// process with the signal's default action. `clock` runs the check; it, `fd`
// and whatever `record` uses must stay valid until Disarm().
void ArmInterruptNotice(const std::string& run_id, int fd, Clock* clock,
                        std::function<void(int signal_number)> record);

// The run has finished executing and its final status is about to be
// queued: from now until the process exits, SIGINT and SIGTERM are ignored,
// and the exit code is the recorded status's. A signal that came before is
// handled as it would have been (the run is recorded interrupted and the
// process dies of it): then SealRunEnd does not return. Call it from the
// thread that goes on to record the finish. Nothing happens when not armed.
void SealRunEnd();

// Restores the previous actions of SIGINT and SIGTERM (unless SealRunEnd
// made them ignored) and stops the check. A signal that came before is still
// handled: Disarm then does not return.
void DisarmInterruptNotice();

}  // namespace keel::cli
