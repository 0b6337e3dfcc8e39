#pragma once
// Loads the workflow a recorded run ran, from the script text stored with the
// run, so that it can be drawn even after the file changed or went away.
// Runs the script's top-level code, like any load. Call from one thread.

#include <memory>
#include <string>
#include <vector>

#include "engine/runner.h"
#include "engine/quota_source.h"
#include "engine/status.h"
#include "engine/store.h"
#include "scripts/workflow_loader.h"

namespace keel::cli {

// The script as recorded for `run`: the file at its recorded path when its
// hash still matches, otherwise a private copy of the recorded text. Fails
// with the loader's message when the recorded text no longer loads.
Result<std::shared_ptr<LoadedScript>> LoadRecordedScript(const RunRecord& run);
// The same for a recorded script version: when the file or one of its
// modules changed, the private copy holds the recorded modules too (those
// that were under the script's directory), so `require` finds them.
// Provider limits take from `quotas` when given (shared rate limits).
Result<std::shared_ptr<LoadedScript>> LoadRecordedScript(
    const ScriptVersion& version, std::shared_ptr<QuotaSource> quotas = nullptr);
// The same for `run`'s latest script version in `store`, modules included;
// from the run record alone when the versions cannot be read.
Result<std::shared_ptr<LoadedScript>> LoadRecordedScript(Store* store, const RunRecord& run);

// What differs between `recorded` (a run's latest script version) and
// `script` as it is now, one line each: "PATH changed since the run
// started", "module NAME (PATH) changed since the run started", "... is
// required now" or "... is no longer required". Empty when nothing does.
std::vector<std::string> ScriptChanges(const ScriptVersion& recorded, const ScriptInfo& script);

// Prints "note: LINE; resuming with the script as it is now" on stderr for
// each ScriptChanges line between `run`'s latest recorded version in
// `store` and `script`. Prints nothing when the versions cannot be read.
void NoteScriptChanges(Store* store, const RunRecord& run, const ScriptInfo& script);

}  // namespace keel::cli
