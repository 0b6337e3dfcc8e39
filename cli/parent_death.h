#pragma once
// Children that must not outlive the process that started them: `keel
// serve` runs short `keel` commands for their output (service/command_output)
// with KEEL_PARENT_DEATH set to its pid. Such a child asks the kernel to
// kill it when its parent dies, so a `keel serve` killed with SIGKILL leaves
// no `keel graph` or `keel schedules` behind (a script looping at load time
// would otherwise spin forever).
//
// Process-wide; call from the main thread, first thing.

namespace keel::cli {

// When KEEL_PARENT_DEATH names this process's parent: SIGKILL on its death
// (PR_SET_PDEATHSIG), or exit 1 now when it has already died. Unsets the
// variable, so the children this process starts do not inherit it.
void DieWithParentIfAsked();

}  // namespace keel::cli
