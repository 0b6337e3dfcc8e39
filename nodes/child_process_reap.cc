// ProcessLoop's thread (see child_process.h): takes queued children into
// its epoll set, waits on their pipes and exits, writes their stdin and
// reads their output, applies deadlines, cancels and kill graces, and reaps
// each child and reports it. How children are started is in child_process.cc.

#include <signal.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <utility>

#include "engine/mutex.h"
#include "nodes/child_process.h"
#include "nodes/child_process_impl.h"

namespace keel {

using process_detail::Child;
using process_detail::Event;
using process_detail::kErr;
using process_detail::kExit;
using process_detail::kIn;
using process_detail::kOut;
using process_detail::Live;
using process_detail::LiveGroups;
using process_detail::Shared;

namespace {

constexpr int kMaxEvents = 64;
constexpr size_t kReadChunk = 64 << 10;
// Without pidfds (kernels before 5.3) exits are found by polling this often.
constexpr int kPollExitMs = 20;

// Queues `event` for child `id` and wakes the loop's thread, unless the loop
// is gone or stopping. Any thread: timer and cancel callbacks call it.
void Notify(const std::weak_ptr<Shared>& weak, uint64_t id, Event event) {
  auto shared = weak.lock();
  if (shared == nullptr) return;
  int fd;
  {
    MutexLock lock(&shared->mu);
    if (shared->stopping || shared->wake_fd < 0) return;
    shared->events.emplace_back(id, event);
    fd = shared->wake_fd;
  }
  uint64_t one = 1;
  [[maybe_unused]] ssize_t written = write(fd, &one, sizeof one);
}

}  // namespace

void ProcessLoop::Impl::Run() {
  epoll_event ready[kMaxEvents];
  std::vector<std::unique_ptr<Child>> added;
  std::vector<std::pair<uint64_t, Event>> events;
  for (;;) {
    int count = epoll_wait(epoll, ready, kMaxEvents, unpolled > 0 ? kPollExitMs : -1);
    for (int i = 0; i < count; ++i) {
      uint64_t data = ready[i].data.u64;
      if (data == ~uint64_t{0}) continue;  // the wake-up: drained below
      auto it = children.find(data >> 2);
      if (it == children.end()) continue;
      OnReady(*it->second, data & 3, ready[i].events);
      MaybeFinish(data >> 2);
    }
    if (unpolled > 0) PollExits();
    int wake_fd;
    bool stopping;
    {
      MutexLock lock(&shared->mu);
      events.swap(shared->events);
      stopping = shared->stopping;
      wake_fd = shared->wake_fd;
    }
    uint64_t value;
    [[maybe_unused]] ssize_t got = read(wake_fd, &value, sizeof value);
    {
      MutexLock lock(&queue_mu);
      added.swap(queued);
    }
    for (auto& child : added) Add(std::move(child), epoll);
    added.clear();
    for (auto [id, event] : events) {
      Apply(id, event);
      MaybeFinish(id);
    }
    events.clear();
    if (stopping) break;
  }
  // Shutting down: nothing may outlive the loop.
  while (!children.empty()) {
    auto it = children.begin();
    std::unique_ptr<Child> child = std::move(it->second);
    children.erase(it);
    if (child->failure.ok()) {
      child->failure = Status::Error(ErrorKind::kCancelled, "keel is shutting down");
    }
    kill(-child->proc.pid, SIGKILL);
    child->grace_over = true;
    Finish(std::move(child));
  }
}

void ProcessLoop::Impl::Add(std::unique_ptr<Child> child, int epoll_fd) {
  auto watch = [&](int fd, uint64_t which, uint32_t events) {
    if (fd < 0) return;
    epoll_event event{};
    event.events = events;
    event.data.u64 = (child->id << 2) | which;
    epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &event);
  };
  watch(child->proc.pidfd, kExit, EPOLLIN);
  watch(child->proc.stdout_fd, kOut, EPOLLIN);
  watch(child->proc.stderr_fd, kErr, EPOLLIN);
  watch(child->proc.stdin_fd, kIn, EPOLLOUT);
  if (child->proc.pidfd < 0) ++unpolled;
  // Armed here, on the loop's thread, once the child is in `children`: the
  // callbacks only queue an event, applied to the child if it is still there.
  std::weak_ptr<Shared> weak = shared;
  uint64_t id = child->id;
  if (child->deadline > 0) {
    child->deadline_timer = clock->After(child->deadline - clock->Now(),
                                         [weak, id] { Notify(weak, id, Event::kDeadline); });
  }
  Child& added = *child;
  children.emplace(id, std::move(child));
  if (added.cancel != nullptr) {
    // Runs Notify at once when the token is cancelled already.
    added.subscription = added.cancel->Subscribe([weak, id] { Notify(weak, id, Event::kCancel); });
  }
}

void ProcessLoop::Impl::Apply(uint64_t id, Event event) {
  auto it = children.find(id);
  if (it == children.end()) return;  // finished meanwhile
  Child& child = *it->second;
  switch (event) {
    case Event::kDeadline:
      child.deadline_timer = 0;
      return Terminate(child, Status::Error(ErrorKind::kTimeout, "timed out"));
    case Event::kCancel:
      return Terminate(child, Status::Error(ErrorKind::kCancelled, "cancelled"));
    case Event::kGraceOver:
      child.grace_timer = 0;
      child.grace_over = true;
      // The leader is still unreaped, so its pid still names the group.
      kill(-child.proc.pid, SIGKILL);
      return;
  }
}

void ProcessLoop::Impl::OnReady(Child& child, uint64_t which, uint32_t ready) {
  switch (which) {
    case kExit:
      Unwatch(&child.proc.pidfd);
      return OnExit(child);
    case kOut:
      return ReadPipe(child, &child.proc.stdout_fd, true);
    case kErr:
      return ReadPipe(child, &child.proc.stderr_fd, false);
    case kIn:
      if (ready & (EPOLLERR | EPOLLHUP)) return Unwatch(&child.proc.stdin_fd);
      return WriteStdin(child);
  }
}

void ProcessLoop::Impl::OnExit(Child& child) {
  child.exited = true;
  // What it wrote is in the pipes; unless another process of its group
  // holds them, they are at their end now.
  if (child.proc.stdout_fd >= 0) ReadPipe(child, &child.proc.stdout_fd, true);
  if (child.proc.stderr_fd >= 0) ReadPipe(child, &child.proc.stderr_fd, false);
  // Whatever of its group is left is ended too (see the header).
  if (child.proc.stdout_fd >= 0 || child.proc.stderr_fd >= 0) Terminate(child, Status::Ok());
}

void ProcessLoop::Impl::ReadPipe(Child& child, int* fd, bool is_stdout) {
  std::string& out = is_stdout ? child.result.stdout_data : child.result.stderr_data;
  for (;;) {
    size_t size = out.size();
    out.resize(size + kReadChunk);
    ssize_t got = read(*fd, out.data() + size, kReadChunk);
    out.resize(size + (got > 0 ? static_cast<size_t>(got) : 0));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0 && errno == EAGAIN) return;
    if (got <= 0) return Unwatch(fd);  // end of file, or an error that is as good as one
    if (is_stdout && out.size() > child.max_stdout) {
      out.resize(child.max_stdout);
      Unwatch(fd);
      return Terminate(child, Status::Error(ErrorKind::kPermanent,
                                            "stdout is over the limit of " +
                                                std::to_string(child.max_stdout >> 20) + " MiB"));
    }
    if (!is_stdout && out.size() > 2 * kStderrKept) {
      out.erase(0, out.size() - kStderrKept);
      child.result.stderr_truncated = true;
    }
  }
}

void ProcessLoop::Impl::WriteStdin(Child& child) {
  while (child.input_sent < child.input.size()) {
    ssize_t put = write(child.proc.stdin_fd, child.input.data() + child.input_sent,
                        child.input.size() - child.input_sent);
    if (put < 0 && errno == EINTR) continue;
    if (put < 0 && errno == EAGAIN) return;
    if (put < 0) {
      // EPIPE: the program stopped reading; not an error of its run. Take
      // the SIGPIPE this thread blocks so that it does not stay pending.
      if (errno == EPIPE) {
        sigset_t pipe;
        sigemptyset(&pipe);
        sigaddset(&pipe, SIGPIPE);
        timespec zero{};
        sigtimedwait(&pipe, nullptr, &zero);
      }
      break;
    }
    child.input_sent += static_cast<size_t>(put);
  }
  std::string().swap(child.input);
  Unwatch(&child.proc.stdin_fd);  // EOF for the program
}

// Asks the process group to stop (SIGTERM), with SIGKILL after the grace.
// `why` is kept as the run's failure unless it is ok or one is kept already.
void ProcessLoop::Impl::Terminate(Child& child, Status why) {
  if (!why.ok() && child.failure.ok()) child.failure = std::move(why);
  if (child.terminating) return;
  child.terminating = true;
  kill(-child.proc.pid, SIGTERM);
  std::weak_ptr<Shared> weak = shared;
  uint64_t id = child.id;
  if (child.kill_grace <= 0) {
    child.grace_over = true;
    kill(-child.proc.pid, SIGKILL);
    return;
  }
  child.grace_timer =
      clock->After(child.kill_grace, [weak, id] { Notify(weak, id, Event::kGraceOver); });
}

void ProcessLoop::Impl::PollExits() {
  for (auto& [id, child] : children) {
    if (child->exited || child->proc.pidfd >= 0) continue;
    siginfo_t info{};
    if (waitid(P_PID, child->proc.pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
        info.si_pid == child->proc.pid) {
      --unpolled;
      OnExit(*child);
    }
  }
  for (auto it = children.begin(); it != children.end();) {
    uint64_t id = (it++)->first;
    MaybeFinish(id);
  }
}

// Finishes child `id` once its leader has exited and its output is read —
// or, after SIGKILL, without waiting for descendants still holding a pipe.
void ProcessLoop::Impl::MaybeFinish(uint64_t id) {
  auto it = children.find(id);
  if (it == children.end()) return;
  Child& child = *it->second;
  bool drained = child.proc.stdout_fd < 0 && child.proc.stderr_fd < 0;
  if (!child.exited || !(drained || child.grace_over)) return;
  std::unique_ptr<Child> owned = std::move(it->second);
  children.erase(it);
  Finish(std::move(owned));
}

void ProcessLoop::Impl::Finish(std::unique_ptr<Child> child) {
  pid_t pid = child->proc.pid;
  {
    LiveGroups& live = Live();
    MutexLock lock(&live.mu);
    live.pids.erase(pid);
  }
  // The leader is a zombie (or about to be, after SIGKILL): its pid still
  // names the group, so this cannot reach an unrelated process.
  kill(-pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (child->proc.pidfd < 0 && !child->exited) --unpolled;
  for (int* fd : {&child->proc.pidfd, &child->proc.stdin_fd, &child->proc.stdout_fd,
                  &child->proc.stderr_fd}) {
    Unwatch(fd);
  }
  if (child->deadline_timer != 0) clock->Cancel(child->deadline_timer);
  if (child->grace_timer != 0) clock->Cancel(child->grace_timer);
  if (child->subscription != 0) child->cancel->Unsubscribe(child->subscription);
  ProcessResult result = std::move(child->result);
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
  if (result.stderr_data.size() > kStderrKept) {
    result.stderr_data.erase(0, result.stderr_data.size() - kStderrKept);
    result.stderr_truncated = true;
  }
  result.status = std::move(child->failure);
  result.seconds = clock->Now() - child->started;
  ProcessDone done = std::move(child->done);
  child.reset();
  running.fetch_sub(1, std::memory_order_acq_rel);
  try {
    done(std::move(result));
  } catch (...) {
    // `done` must not throw; one that does must not end the loop's thread.
  }
}

}  // namespace keel
