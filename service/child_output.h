#pragma once
// RunChild: runs a short-lived child process (a `keel` subcommand that
// needs Lua, which the service itself never loads) from an argv vector —
// never through a shell — and collects what it prints. Free function; any
// thread; each call waits for its own child only.

#include <string>
#include <vector>

namespace keel::service {

struct ChildOutput {
  int exit_code = -1;  // -1 when it could not start, was killed or timed out
  std::string out;     // its stdout
  std::string error;   // its stderr's last line, or why it did not run
};

// Runs argv[0] with `argv`, stdin from /dev/null. Kills it (SIGKILL) after
// `timeout_s` seconds.
ChildOutput RunChild(const std::vector<std::string>& argv, double timeout_s);

}  // namespace keel::service
