#pragma once
// How `keel submit` and `keel fork --queue` report the run they queued: its
// id on stdout, or {"run_id": ..., "status": "queued"} with --json. Main
// thread only.

#include "engine/runner.h"

namespace keel::cli {

// Prints the queued run of `report` and returns 0, or prints the error and
// returns the usage exit code (2). (Defined in submit_command.cc.)
int PrintQueued(const Result<RunReport>& report, bool json);

}  // namespace keel::cli
