// ProcessLoop's starting side (see child_process.h): Start spawns on the
// calling thread and queues the child for the loop's thread, which the
// first Start starts; the loop's end; KillAllPrograms. What the loop's
// thread does with a child is in child_process_reap.cc.

#include "nodes/child_process.h"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "engine/mutex.h"
#include "nodes/child_process_impl.h"
#include "nodes/process_spawn.h"

namespace keel {

using process_detail::Child;
using process_detail::Live;
using process_detail::LiveGroups;

namespace process_detail {

LiveGroups& Live() {
  static LiveGroups* live = new LiveGroups;  // never destroyed: used until exit
  return *live;
}

}  // namespace process_detail

int ProcessLoop::Impl::EnsureStarted() {
  MutexLock lock(&shared->mu);
  if (shared->stopping) {
    errno = ECANCELED;
    return -1;
  }
  if (shared->thread.joinable()) return shared->epoll_fd;
  if (shared->epoll_fd < 0) shared->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  if (shared->wake_fd < 0) shared->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (shared->epoll_fd < 0 || shared->wake_fd < 0) return -1;
  epoll_event wake{};
  wake.events = EPOLLIN;
  wake.data.u64 = ~uint64_t{0};
  if (epoll_ctl(shared->epoll_fd, EPOLL_CTL_ADD, shared->wake_fd, &wake) != 0 && errno != EEXIST) {
    return -1;
  }
  epoll = shared->epoll_fd;
  shared->thread = std::thread([this] {
    // A write to a stdin whose reader is gone must fail with EPIPE here,
    // not kill keel: SIGPIPE stays pending on this thread, blocked.
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
    Run();
    if (orphaned) delete this;
  });
  return shared->epoll_fd;
}

ProcessLoop::ProcessLoop(Clock* clock) : impl_(std::make_unique<Impl>(clock)) {}

ProcessLoop::~ProcessLoop() {
  std::thread thread;
  int wake_fd;
  {
    MutexLock lock(&impl_->shared->mu);
    impl_->shared->stopping = true;
    thread = std::move(impl_->shared->thread);
    wake_fd = impl_->shared->wake_fd;
  }
  if (!thread.joinable()) return;
  if (thread.get_id() == std::this_thread::get_id()) {
    // A `done` let go of the last reference: the thread cannot join itself;
    // it kills what is left and deletes the Impl once out of Run.
    impl_->orphaned = true;
    thread.detach();
    impl_.release();
    return;
  }
  uint64_t one = 1;
  [[maybe_unused]] ssize_t written = write(wake_fd, &one, sizeof one);
  thread.join();
}

void ProcessLoop::Start(ProcessRequest request, ProcessDone done) {
  Impl& impl = *impl_;
  double now = impl.clock->Now();
  auto fail = [&](Status status) {
    ProcessResult result;
    result.status = std::move(status);
    done(std::move(result));
  };
  if (request.cancel != nullptr && request.cancel->cancelled()) {
    return fail(Status::Error(ErrorKind::kCancelled, "cancelled"));
  }
  if (request.deadline > 0 && request.deadline <= now) {
    return fail(Status::Error(ErrorKind::kTimeout, "timed out before it started"));
  }
  if (impl.EnsureStarted() < 0) {
    return fail(Status::Error(ErrorKind::kTransient,
                              std::string("cannot watch processes: ") + std::strerror(errno)));
  }
  auto spawned = SpawnProcess(request);
  if (!spawned.ok()) return fail(spawned.status());

  {
    LiveGroups& live = Live();
    MutexLock lock(&live.mu);
    live.pids.insert(spawned->pid);
  }
  auto child = std::make_unique<Child>();
  child->id = impl.next_id.fetch_add(1, std::memory_order_relaxed) + 1;
  child->proc = *spawned;
  child->input = std::move(request.stdin_data);
  child->max_stdout = request.max_stdout;
  child->kill_grace = request.kill_grace;
  child->started = now;
  child->cancel = request.cancel;
  child->result.pid = spawned->pid;
  child->done = std::move(done);
  child->deadline = request.deadline;
  impl.running.fetch_add(1, std::memory_order_acq_rel);
  {
    MutexLock lock(&impl.queue_mu);
    impl.queued.push_back(std::move(child));
  }
  int wake_fd;
  {
    MutexLock lock(&impl.shared->mu);
    wake_fd = impl.shared->wake_fd;
  }
  uint64_t one = 1;
  [[maybe_unused]] ssize_t written = write(wake_fd, &one, sizeof one);
}

void KillAllPrograms() {
  LiveGroups& live = Live();
  MutexLock lock(&live.mu);
  for (pid_t pid : live.pids) kill(-pid, SIGKILL);
}

int64_t ProcessLoop::running() const { return impl_->running.load(std::memory_order_acquire); }

}  // namespace keel
