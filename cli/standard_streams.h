#pragma once
// How keel treats its standard streams. stderr carries progress, keel.log
// lines and messages: a reader that goes away or a failing device must never
// stop a run, so SIGPIPE does not kill the process and stderr write errors are
// ignored where they happen. stdout carries the command's result: when it
// cannot be written, the command fails (kExitOutput) with a message on
// stderr, as coreutils do ("keel: write error: No space left on device").
//
// Process-wide; call from the main thread only.

namespace keel::cli {

// From now on a write to a closed pipe or socket fails with EPIPE instead of
// killing the process. The signal is caught by a handler that does nothing
// rather than ignored, so programs keel starts get the default action back.
void SurviveSigpipe();

// Flushes stdout now (e.g. so that it comes before a line on stderr),
// keeping the reason of a failure for FinishStdout: glibc drops the buffer of
// a failed flush, so a later flush would succeed with nothing to say.
void FlushStdout();

// Flushes and closes stdout. Returns `exit_code` when everything written to
// stdout reached it; otherwise prints "keel: write error: REASON" on stderr
// (nothing for a closed pipe: its reader chose to stop) and returns
// kExitOutput.
int FinishStdout(int exit_code);

}  // namespace keel::cli
