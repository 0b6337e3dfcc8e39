#pragma once
// RunForOutput: runs a child process from an argv vector (never a shell) and
// collects what it prints, killing it when it overruns a deadline. The
// scheduler runs `keel schedules --json` with it, provider health `keel
// doctor`, the runs API `keel submit` and `keel graph`. Free function; safe from
// any thread (each call has its own child and pipes).

#include <atomic>
#include <string>
#include <vector>

#include "engine/status.h"

namespace keel::service {

struct CommandOutput {
  int exit_code = -1;  // -1 when killed by a signal
  std::string out;     // stdout
  std::string err;     // stderr
};

// Spawns argv[0] (a path; not searched in PATH) with `argv`, stdin from
// /dev/null, and waits for it to exit, reading stdout and stderr (each
// capped at `max_bytes`; the rest is discarded). Fails (kTimeout) when it
// runs longer than `timeout_s` seconds, after killing it (SIGKILL) and
// reaping it; fails (kPermanent) when it cannot be started. When `abort`
// turns true (another thread sets it), kills the child likewise within a
// tenth of a second and fails with kCancelled. A non-empty `cwd` is the
// child's working directory.
Result<CommandOutput> RunForOutput(const std::vector<std::string>& argv, double timeout_s,
                                   const std::atomic<bool>* abort = nullptr,
                                   const std::string& cwd = "", size_t max_bytes = 256u << 20);

}  // namespace keel::service
