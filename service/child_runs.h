#pragma once
// ChildRuns: the `keel` child processes `keel serve` runs workflows in, and
// how many of them may run at once (--max-runs).
//
// Children are spawned with an argv vector (posix_spawn, never a shell) in a
// session of their own, so a Ctrl-C or SIGTERM sent to the server's terminal
// or process group leaves them running to finish (or to be resumed). Their
// stdout and stderr are appended to one log file per run beside the
// database: `<db>-logs/<run id>.log`. Reap() collects children that ended.
//
// Thread-safety: every method may be called from any thread; one mutex
// guards the children and the slots.

#include <sys/types.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "engine/mutex.h"
#include "engine/status.h"

namespace keel::service {

// How a child ended: its exit code, or 128 + the signal that killed it.
using ExitFn = std::function<void(int exit_code)>;

class ChildRuns {
 public:
  // `keel_path`: the keel executable; `db`: the database every child gets as
  // --db; `max_runs`: children at once.
  ChildRuns(std::string keel_path, std::string db, int max_runs);
  // Children still running are left running (they are in their own session).
  ~ChildRuns() = default;

  ChildRuns(const ChildRuns&) = delete;
  ChildRuns& operator=(const ChildRuns&) = delete;

  // Takes one of the --max-runs slots for a child about to start: false when
  // they are all taken. Start uses the slot; Unreserve gives it back unused.
  bool Reserve();
  void Unreserve();

  // Starts `keel ARGS --db DB` for run `run_id` in the slot Reserve took,
  // its output appended to LogPath(run_id). `on_exit` runs on the thread
  // that calls Reap once it has ended. Fails (the slot given back) when the
  // log cannot be opened or the process cannot be spawned.
  Status Start(const std::string& run_id, const std::vector<std::string>& args, ExitFn on_exit);

  // Collects children that ended (without blocking) and calls their on_exit,
  // outside the lock.
  void Reap();

  // Children running or about to (slots taken).
  int Active() const;
  int max_runs() const { return max_runs_; }

  // Where run `run_id`'s children write: `<db>-logs/<run id>.log`.
  std::string LogPath(const std::string& run_id) const;
  const std::string& db() const { return db_; }
  const std::string& keel_path() const { return keel_path_; }

 private:
  struct Child {
    std::string run_id;
    ExitFn on_exit;
  };
  const std::string keel_path_;
  const std::string db_;
  const int max_runs_;
  mutable Mutex mu_;
  std::map<pid_t, Child> children_ GUARDED_BY(mu_);
  int reserved_ GUARDED_BY(mu_) = 0;  // slots taken, children included
};

}  // namespace keel::service
