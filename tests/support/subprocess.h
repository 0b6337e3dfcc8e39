#pragma once
// Subprocess: one child process started by a test, with its stdout and stderr
// captured, bounded waits and signals.
//
// Output goes to unlinked temporary files rather than pipes, so the child
// never blocks on a full pipe and the test can read what it has written so
// far at any moment (e.g. to find a line it printed before being killed).
// stdin is /dev/null.
//
// Not thread-safe: use a Subprocess from one thread. The destructor kills
// (SIGKILL) and reaps a child that is still running, so no child outlives the
// test that started it.

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace keel::testing {

struct SpawnOptions {
  std::vector<std::string> args;  // argv[1..]
  std::string cwd = {};           // empty: the test's working directory
  // Changes on top of the test's environment, applied in order; nullopt unsets.
  std::vector<std::pair<std::string, std::optional<std::string>>> env = {};
};

// How a child ended, with everything it printed.
struct ExitInfo {
  bool timed_out = false;  // the wait gave up and killed the child
  int exit_code = -1;      // set when it exited normally
  int signal = 0;          // set when a signal ended it
  std::string out;
  std::string err;

  // "exit 2" / "signal 9" / "timed out", then stdout and stderr: for failure messages.
  std::string Describe() const;
};

class Subprocess {
 public:
  // Starts `program` (a path) with `options`. Throws std::runtime_error when
  // it cannot be started.
  Subprocess(const std::string& program, const SpawnOptions& options);
  ~Subprocess();

  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  pid_t pid() const { return pid_; }

  // Everything the child has written so far.
  std::string Stdout() const;
  std::string Stderr() const;

  // Non-blocking: true once the child has ended (and was reaped).
  bool Exited();

  // Polls until stderr contains `needle`. False when the child ended or
  // `timeout` passed first (the child is left running).
  bool WaitForStderr(const std::string& needle, std::chrono::milliseconds timeout);

  // SIGKILL, then reaps. Returns how the child ended (it may have exited on
  // its own just before).
  ExitInfo Kill();

  // Waits up to `timeout` for the child to end. On timeout kills it (SIGKILL),
  // reaps it and returns with timed_out set.
  ExitInfo Wait(std::chrono::milliseconds timeout);

 private:
  // Records a waitpid status.
  void Reaped(int wait_status);
  ExitInfo Info() const;

  pid_t pid_ = -1;
  bool reaped_ = false;
  bool timed_out_ = false;
  int wait_status_ = 0;
  int out_fd_ = -1;  // unlinked temp files the child writes to
  int err_fd_ = -1;
};

// Starts `program`, waits up to `timeout` and returns how it ended.
ExitInfo RunProcess(const std::string& program, const SpawnOptions& options,
                    std::chrono::milliseconds timeout);

}  // namespace keel::testing
