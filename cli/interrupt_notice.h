#pragma once
// Tells the user how to continue a run stopped by Ctrl-C (SIGINT) or SIGTERM:
// "keel: interrupted; resume with: keel resume ID". keel does not
// catch the signal otherwise: the process dies as it would have, leaving the
// run recorded as running with a dead owner, which is what resume expects.
//
// Process-wide state; call Arm and Disarm from one thread. The signal
// handler itself only uses async-signal-safe calls.

#include <string>

namespace keel::cli {

// From now on, SIGINT and SIGTERM first write the notice for `run_id` to
// file descriptor `fd`, then end the process with the default action.
// `fd` must stay open until Disarm().
void ArmInterruptNotice(const std::string& run_id, int fd);

// Restores the default actions of SIGINT and SIGTERM.
void DisarmInterruptNotice();

}  // namespace keel::cli
