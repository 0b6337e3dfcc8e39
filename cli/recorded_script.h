#pragma once
// Loads the workflow a recorded run ran, from the script text stored with the
// run, so that it can be drawn even after the file changed or went away.
// Runs the script's top-level code, like any load. Call from one thread.

#include <memory>

#include "engine/status.h"
#include "engine/store.h"
#include "scripts/workflow_loader.h"

namespace keel::cli {

// The script as recorded for `run`: the file at its recorded path when its
// hash still matches, otherwise a private copy of the recorded text. Fails
// with the loader's message when the recorded text no longer loads.
Result<std::shared_ptr<LoadedScript>> LoadRecordedScript(const RunRecord& run);

}  // namespace keel::cli
