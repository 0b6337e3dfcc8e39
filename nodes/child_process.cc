#include "nodes/child_process.h"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "engine/mutex.h"
#include "nodes/process_spawn.h"

namespace keel {
namespace {

constexpr int kMaxEvents = 64;
constexpr size_t kReadChunk = 64 << 10;
// Without pidfds (kernels before 5.3) exits are found by polling this often.
constexpr int kPollExitMs = 20;

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

// The process groups of every program running in this process, for
// KillAllPrograms. A leader leaves before it is reaped, so its pid still
// names its group whenever it is here.
struct LiveGroups {
  Mutex mu;
  std::unordered_set<pid_t> pids GUARDED_BY(mu);
};

LiveGroups& Live() {
  static LiveGroups* live = new LiveGroups;  // never destroyed: used until exit
  return *live;
}

void CloseFd(int* fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

}  // namespace

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

// The loop's thread and what only it touches (`children`); `shared` is
// shared with the callbacks.
struct ProcessLoop::Impl {
  explicit Impl(Clock* c) : clock(c), shared(std::make_shared<Shared>()) {}

  // Makes the descriptors and starts the thread unless done already.
  // Returns the epoll descriptor, or -1 with errno set.
  int EnsureStarted() LOCKS_EXCLUDED(shared->mu);
  void Run();
  void Add(std::unique_ptr<Child> child, int epoll_fd);
  void Apply(uint64_t id, Event event);
  void OnReady(Child& child, uint64_t which, uint32_t ready);
  // The leader has exited (it is a zombie until Finish reaps it).
  void OnExit(Child& child);
  void ReadPipe(Child& child, int* fd, bool is_stdout);
  void WriteStdin(Child& child);
  void Terminate(Child& child, Status why);
  void PollExits();
  void MaybeFinish(uint64_t id);
  void Finish(std::unique_ptr<Child> child);
  void Unwatch(int* fd) {
    if (*fd >= 0) epoll_ctl(epoll, EPOLL_CTL_DEL, *fd, nullptr);
    CloseFd(fd);
  }

  Clock* const clock;
  const std::shared_ptr<Shared> shared;
  std::atomic<int64_t> running{0};
  std::atomic<uint64_t> next_id{0};
  int epoll = -1;  // the loop thread's copy of shared->epoll_fd
  std::unordered_map<uint64_t, std::unique_ptr<Child>> children;
  int unpolled = 0;  // children without a pidfd
  // Set by ~ProcessLoop when it runs on the loop's thread: the thread then
  // deletes the Impl itself once out of Run.
  bool orphaned = false;
  // New children pass from Start to the thread here.
  Mutex queue_mu;
  std::vector<std::unique_ptr<Child>> queued GUARDED_BY(queue_mu);
};

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
