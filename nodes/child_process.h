#pragma once
// ProcessLoop: runs programs (an argv list, no shell) without holding the
// thread that starts them, so an exec node costs a worker only for the spawn.
//
// Start() spawns the program on the calling thread (posix_spawn, in a
// process group of its own, every descriptor but its stdin, stdout and
// stderr closed) and hands it to the loop's thread, which watches its pipes
// and its exit (a pidfd) in one epoll set: stdin is written from memory,
// stdout and stderr are read, all without blocking, so a child that writes
// a lot while keel still feeds it a lot cannot deadlock against keel.
//
// A deadline or a cancelled token kills the whole process group: SIGTERM,
// then SIGKILL after `kill_grace`. When the program exits, whatever is left
// of its process group is terminated the same way, so no process of a node
// outlives it; every child is reaped. Timers are the Clock's (so tests run
// on a FakeClock); the loop's thread starts with the first Start.
//
// Thread-safety: Start may be called from any thread, from inside a `done`
// too; `done` runs exactly once, on the loop's thread (or on the calling
// thread when the program could not start), and must not block. Destroying
// the loop kills (SIGKILL) and reaps what still runs; each `done` then gets
// kCancelled.

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/cancel_token.h"
#include "engine/clock.h"
#include "engine/status.h"

namespace keel {

// The most stdout a program may write (64 MiB): past it, it is killed and
// the run of it fails kPermanent.
inline constexpr size_t kMaxProcessOutput = size_t{64} << 20;
// How much of the end of stderr is kept.
inline constexpr size_t kStderrKept = size_t{64} << 10;

struct ProcessRequest {
  // argv[0] is the program: a path (relative ones from `cwd`), or a name
  // looked up in the child's PATH.
  std::vector<std::string> argv;
  // Set in the child's environment on top of keel's own.
  std::vector<std::pair<std::string, std::string>> env;
  std::string cwd;         // "": keel's working directory
  bool has_stdin = false;  // false: stdin is /dev/null
  std::string stdin_data;  // written to stdin, which is then closed
  size_t max_stdout = kMaxProcessOutput;
  double deadline = 0;                  // Clock::Now() time it is killed at; 0: none
  const CancelToken* cancel = nullptr;  // may be null; must outlive the run
  double kill_grace = 2;                // seconds from SIGTERM to SIGKILL
};

struct ProcessResult {
  // ok: the program ran and ended by itself (exit_code or signal tells how).
  // kPermanent: it could not start (a missing or non-executable program, a
  // bad cwd; the message names the path) or wrote more than max_stdout.
  // kTransient: the system refused the spawn (out of processes, memory).
  // kTimeout: the deadline killed it; kCancelled: the token did.
  Status status;
  int exit_code = -1;  // 0..255 when it exited
  int signal = 0;      // the signal that ended it, if one did
  pid_t pid = 0;       // 0 when it never started
  std::string stdout_data;
  std::string stderr_data;  // the last kStderrKept bytes of stderr
  bool stderr_truncated = false;
  double seconds = 0;  // from Start to the end
};

using ProcessDone = std::function<void(ProcessResult)>;

class ProcessLoop {
 public:
  // `clock` (not null, outliving the loop) arms deadlines and kill graces.
  // Cheap: descriptors and the thread come with the first Start.
  explicit ProcessLoop(Clock* clock);
  ~ProcessLoop();
  ProcessLoop(const ProcessLoop&) = delete;
  ProcessLoop& operator=(const ProcessLoop&) = delete;

  // Spawns `request` and later calls `done` with how it ended.
  void Start(ProcessRequest request, ProcessDone done);

  // Programs started and not yet reported; for tests and benches.
  int64_t running() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Kills (SIGKILL) the process group of every program that a ProcessLoop of
// this process is running. For a process about to die of a signal (keel
// interrupted), whose loops will not get to it. Async-signal-unsafe (it
// takes a lock); any thread.
void KillAllPrograms();

}  // namespace keel
