#pragma once
// RunProbeChild: runs a child process (a `keel doctor` the service needs,
// since the service itself never loads Lua) from an argv vector, never
// through a shell, and collects its stdout; stdin and stderr are
// /dev/null. A child still running after `timeout` seconds is killed
// (SIGKILL) and reaped, and so is one whose `cancel` flag is set (a probe
// must not hold up the service's shutdown). A free function; any thread;
// blocks its caller.

#include <atomic>
#include <string>
#include <vector>

namespace keel::service {

struct ProbeChildResult {
  bool started = false;    // false: it could not be spawned (see error)
  bool timed_out = false;  // it was killed at the timeout
  int exit_code = -1;      // its exit status; -1 when killed by a signal
  std::string out;         // its stdout (at most 16 MiB are kept)
  std::string error;       // why it could not be spawned
};

// `cancel` (may be null) set to true kills the child within about 100 ms.
// `cwd` (when not empty) is the child's working directory.
ProbeChildResult RunProbeChild(const std::vector<std::string>& argv, double timeout,
                         const std::atomic<bool>* cancel = nullptr, const std::string& cwd = "");

}  // namespace keel::service
