#pragma once
// SpawnProcess: the start of a ProcessLoop run (nodes/child_process.h) —
// checks the program and the working directory, makes the pipes and spawns
// the child in a process group of its own. A free function; any thread.

#include <sys/types.h>

#include "engine/status.h"
#include "nodes/child_process.h"

namespace keel {

// The parent's ends of a spawned child. Every descriptor is close-on-exec;
// the pipe ends are non-blocking. Owned by the caller, who closes them.
struct SpawnedProcess {
  pid_t pid = -1;     // also its process group id
  int pidfd = -1;     // -1 when the kernel has no pidfd_open (before 5.3)
  int stdin_fd = -1;  // -1 when stdin is /dev/null
  int stdout_fd = -1;
  int stderr_fd = -1;
};

// Spawns `request`. Fails kPermanent, naming the path, for an empty
// command, a program that is missing, not a regular file or not
// executable, or a cwd that is not a directory; kTransient when the system
// refuses (out of descriptors, processes or memory).
Result<SpawnedProcess> SpawnProcess(const ProcessRequest& request);

}  // namespace keel
