#pragma once
// ProcessLoop's inside (nodes/child_process.h): the state the loop's thread
// shares with Start and with timer and cancel callbacks, and the programs it
// runs, for child_process.cc (spawning, the loop's life) and
// child_process_reap.cc (the loop's thread: pipes, exits, ending and
// reaping). Not for other callers.

#include <sys/epoll.h>
#include <sys/types.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "engine/mutex.h"
#include "nodes/child_process.h"
#include "nodes/process_spawn.h"

namespace keel {
namespace process_detail {

// Which descriptor of a child an epoll event is about: the low two bits of
// its data, above them the child's id.
enum Which : uint64_t { kExit = 0, kOut = 1, kErr = 2, kIn = 3 };

// What another thread asks of a running child.
enum class Event { kDeadline, kCancel, kGraceOver };

// State shared by Start, timer and cancel callbacks (which may outlive the
// loop) and the loop's thread. The descriptors are set once, under `mu`, by
// the first Start, and closed with the last owner; the rest is guarded by `mu`.
struct Shared {
  ~Shared() {
    for (int fd : {wake_fd, epoll_fd}) {
      if (fd >= 0) close(fd);
    }
  }

  Mutex mu;
  int wake_fd GUARDED_BY(mu) = -1;
  int epoll_fd GUARDED_BY(mu) = -1;
  std::vector<std::pair<uint64_t, Event>> events GUARDED_BY(mu);
  bool stopping GUARDED_BY(mu) = false;
  std::thread thread GUARDED_BY(mu);
};

// The process groups of every program running in this process, for
// KillAllPrograms. A leader leaves before it is reaped, so its pid still
// names its group whenever it is here.
struct LiveGroups {
  Mutex mu;
  std::unordered_set<pid_t> pids GUARDED_BY(mu);
};

// The one LiveGroups of this process.
LiveGroups& Live();

inline void CloseFd(int* fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

// One running program. Touched only by the loop's thread once queued.
struct Child {
  uint64_t id = 0;
  SpawnedProcess proc;
  std::string input;  // what is left to write to stdin from `input_sent`
  size_t input_sent = 0;
  size_t max_stdout = kMaxProcessOutput;
  double kill_grace = 2;
  double started = 0;
  double deadline = 0;  // Clock::Now() time; 0: none
  const CancelToken* cancel = nullptr;
  uint64_t subscription = 0;
  TimerId deadline_timer = 0;
  TimerId grace_timer = 0;
  bool exited = false;       // the leader is a zombie: seen, not reaped
  bool terminating = false;  // SIGTERM went to the group
  bool grace_over = false;   // and SIGKILL after it
  Status failure;            // why keel ended it: timeout, cancel, too much output
  ProcessResult result;
  ProcessDone done;
};

}  // namespace process_detail

// The loop's thread and what only it touches (`children`); `shared` is
// shared with the callbacks.
struct ProcessLoop::Impl {
  explicit Impl(Clock* c) : clock(c), shared(std::make_shared<process_detail::Shared>()) {}

  // Makes the descriptors and starts the thread unless done already.
  // Returns the epoll descriptor, or -1 with errno set.
  int EnsureStarted() LOCKS_EXCLUDED(shared->mu);
  void Run();
  void Add(std::unique_ptr<process_detail::Child> child, int epoll_fd);
  void Apply(uint64_t id, process_detail::Event event);
  void OnReady(process_detail::Child& child, uint64_t which, uint32_t ready);
  // The leader has exited (it is a zombie until Finish reaps it).
  void OnExit(process_detail::Child& child);
  void ReadPipe(process_detail::Child& child, int* fd, bool is_stdout);
  void WriteStdin(process_detail::Child& child);
  void Terminate(process_detail::Child& child, Status why);
  void PollExits();
  void MaybeFinish(uint64_t id);
  void Finish(std::unique_ptr<process_detail::Child> child);
  void Unwatch(int* fd) {
    if (*fd >= 0) epoll_ctl(epoll, EPOLL_CTL_DEL, *fd, nullptr);
    process_detail::CloseFd(fd);
  }

  Clock* const clock;
  const std::shared_ptr<process_detail::Shared> shared;
  std::atomic<int64_t> running{0};
  std::atomic<uint64_t> next_id{0};
  int epoll = -1;  // the loop thread's copy of shared->epoll_fd
  std::unordered_map<uint64_t, std::unique_ptr<process_detail::Child>> children;
  int unpolled = 0;  // children without a pidfd
  // Set by ~ProcessLoop when it runs on the loop's thread: the thread then
  // deletes the Impl itself once out of Run.
  bool orphaned = false;
  // New children pass from Start to the thread here.
  Mutex queue_mu;
  std::vector<std::unique_ptr<process_detail::Child>> queued GUARDED_BY(queue_mu);
};

}  // namespace keel
