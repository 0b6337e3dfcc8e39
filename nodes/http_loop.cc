#include "nodes/http_loop.h"

#include <curl/curl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cmath>
#include <limits>
#include <mutex>
#include <system_error>
#include <thread>
#include <unordered_map>

#include "engine/mutex.h"
#include "engine/timer_queue.h"
#include "nodes/curl_library.h"
#include "nodes/http_transfer.h"

namespace keel {
namespace {

using Steady = std::chrono::steady_clock;

constexpr int kMaxEvents = 256;      // epoll events taken per wake-up
constexpr size_t kIdleHandles = 64;  // reset easy handles kept for reuse
constexpr double kNever = std::numeric_limits<double>::infinity();

// State shared by Send, the loop's clock, the I/O thread and the cancel
// callbacks, which may outlive the loop when a token is cancelled as a
// transfer ends. The descriptors are set before any thread starts and closed
// with the last owner; `awake` is atomic; every other field is guarded by
// `mu`.
struct LoopShared {
  ~LoopShared() {
    for (int fd : {wake_fd, epoll_fd}) {
      if (fd >= 0) close(fd);
    }
  }

  int wake_fd = -1;   // eventfd that wakes the I/O thread
  int epoll_fd = -1;  // the I/O thread's: wake_fd and the sockets curl asks for
  // True while the I/O thread is bound to look at `queued`, `cancelled` and
  // `timers` before it next sleeps; whoever turns it true writes `wake_fd`.
  // So a burst of Sends costs one write and one wake-up, not one each.
  std::atomic<bool> awake{true};
  Mutex mu;
  // Sent, not yet added to the multi handle.
  std::vector<std::unique_ptr<Transfer>> queued GUARDED_BY(mu);
  std::vector<uint64_t> cancelled GUARDED_BY(mu);  // transfer ids whose token fired
  TimerQueue timers GUARDED_BY(mu);                // the loop clock's, due in Clock::Now() time
  // Clock::Now() time the sleeping loop wakes up at by itself.
  double sleep_until GUARDED_BY(mu) = 0;
  bool stopping GUARDED_BY(mu) = false;
  std::thread thread GUARDED_BY(mu);  // started by the first Send or timer
};

// Call after queueing work under `mu`, not holding it.
void Wake(LoopShared& shared) {
  if (shared.awake.exchange(true, std::memory_order_acq_rel)) return;
  uint64_t one = 1;
  // Fails only when the counter is full, and then the loop is being woken.
  [[maybe_unused]] ssize_t written = write(shared.wake_fd, &one, sizeof one);
}


}  // namespace

// The I/O thread's side of the loop: curl's multi_socket API over epoll, so
// that a wake-up costs what the ready sockets need, not a walk over every
// transfer; the loop clock's timers run there too. Every field but the
// atomics and `shared` (`multi` included, made by the first transfer) is
// touched only by the I/O thread (and by the destructor once it has joined it).
struct HttpLoop::Impl {
  // The Clock that HttpLoop::clock() hands out: the loop's clock for time,
  // the I/O thread for timers. Callable from any thread.
  class LoopClock final : public Clock {
   public:
    explicit LoopClock(Impl* impl) : impl_(impl) {}
    double Now() override { return impl_->clock->Now(); }
    double WallNow() override { return impl_->clock->WallNow(); }
    TimerId After(double seconds, std::function<void()> fn) override {
      return impl_->AddTimer(seconds, std::move(fn));
    }
    bool Cancel(TimerId id) override {
      MutexLock lock(&impl_->shared->mu);
      return impl_->shared->timers.Cancel(id);
    }

   private:
    Impl* const impl_;
  };

  explicit Impl(Clock* c);
  ~Impl() {
    for (CURL* easy : idle) curl_easy_cleanup(easy);
    if (multi != nullptr) curl_multi_cleanup(multi);  // may still call OnSocket: `shared` is still here
  }

  // Starts the I/O thread unless it runs or has stopped.
  void StartLocked() EXCLUSIVE_LOCKS_REQUIRED(shared->mu) {
    if (shared->thread.joinable() || shared->stopping) return;
    shared->thread = std::thread([this] {
      Run();
      if (orphaned) delete this;
    });
  }
  TimerId AddTimer(double seconds, std::function<void()> fn);
  void Run();
  // Runs the timers due now, one at a time, without the lock.
  void RunTimers();
  // How long epoll may sleep: until curl's timer or the next loop timer,
  // rounded up so that neither runs early; -1 for no limit. Records the
  // wake-up time in shared->sleep_until.
  int SleepMsLocked() EXCLUSIVE_LOCKS_REQUIRED(shared->mu);
  void Drain(std::vector<std::unique_ptr<Transfer>> queued);
  Status OpenMulti();
  void Add(std::unique_ptr<Transfer> transfer);
  void Abort(uint64_t id);
  // Removes transfer `id` from `active`; null when it is not there.
  std::unique_ptr<Transfer> Take(uint64_t id) {
    auto it = active.find(id);
    if (it == active.end()) return nullptr;
    auto transfer = std::move(it->second);
    active.erase(it);
    return transfer;
  }
  void Completed(CURL* easy, CURLcode code);
  void Finish(std::unique_ptr<Transfer> transfer, Status status);
  static int OnSocket(CURL* easy, curl_socket_t socket, int what, void* user, void* registered);

  // Runs inside curl calls, which it must not call back: it only notes the time.
  static int OnTimer(CURLM*, long timeout_ms, void* user) {
    auto* impl = static_cast<Impl*>(user);
    impl->timer_armed = timeout_ms >= 0;
    impl->timer_due = Steady::now() + std::chrono::milliseconds(std::max(0L, timeout_ms));
    return 0;
  }
  void RunCurlTimer() {
    if (multi == nullptr || !timer_armed || Steady::now() < timer_due) return;
    timer_armed = false;  // curl sets the next one through OnTimer
    int running = 0;
    curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
  }
  void ReadCompleted() {
    int left = 0;
    if (multi == nullptr) return;
    while (CURLMsg* message = curl_multi_info_read(multi, &left)) {
      if (message->msg == CURLMSG_DONE) Completed(message->easy_handle, message->data.result);
    }
  }

  Clock* const clock;
  LoopClock loop_clock{this};
  const std::shared_ptr<LoopShared> shared;
  CURLM* multi = nullptr;  // made by the first transfer (OpenMulti)
  std::atomic<int64_t> in_flight{0};
  std::atomic<uint64_t> next_id{0};
  std::unordered_map<uint64_t, std::unique_ptr<Transfer>> active;  // in the multi handle
  std::vector<CURL*> idle;   // reset easy handles, up to kIdleHandles
  bool timer_armed = false;  // curl asked to be called at `timer_due`
  Steady::time_point timer_due;
  // Set by ~HttpLoop when a callback on the I/O thread destroyed the loop:
  // the thread then finishes and deletes the Impl itself.
  bool orphaned = false;
};

// Throws std::system_error when the process is out of file descriptors.
HttpLoop::Impl::Impl(Clock* c) : clock(c), shared(std::make_shared<LoopShared>()) {
  shared->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  shared->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  epoll_event wake{};
  wake.events = EPOLLIN;
  wake.data.fd = shared->wake_fd;
  if (shared->wake_fd < 0 || shared->epoll_fd < 0 ||
      epoll_ctl(shared->epoll_fd, EPOLL_CTL_ADD, shared->wake_fd, &wake) != 0) {
    throw std::system_error(errno, std::generic_category(), "HttpLoop: epoll or eventfd");
  }
}

// libcurl is loaded (curl_library.h) and the multi handle made by the first
// transfer, so that a loop used only for timers never loads it.
Status HttpLoop::Impl::OpenMulti() {
  if (multi != nullptr) return Status::Ok();
  std::string error;
  if (!LoadCurl(&error)) return Status::Error(ErrorKind::kPermanent, error);
  multi = curl_multi_init();
  if (multi == nullptr) return Status::Error(ErrorKind::kTransient, "curl_multi_init failed");
  // Keep every connection of a large burst for reuse; no per-host limit.
  curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, 1024L);
  // Over HTTP/2 a whole burst shares one connection, as far as the server
  // allows; curl's own cap is 100 streams.
  curl_multi_setopt(multi, CURLMOPT_MAX_CONCURRENT_STREAMS, 1000L);
  curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, OnSocket);
  curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, this);
  curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, OnTimer);
  curl_multi_setopt(multi, CURLMOPT_TIMERDATA, this);
  return Status::Ok();
}

TimerId HttpLoop::Impl::AddTimer(double seconds, std::function<void()> fn) {
  const double due = clock->Now() + std::max(seconds, 0.0);
  TimerId id;
  bool earlier;
  {
    MutexLock lock(&shared->mu);
    id = shared->timers.Add(due, std::move(fn));
    // A sleeping loop must wake to sleep less; a busy one looks at the
    // timers before it sleeps again.
    earlier = due < shared->sleep_until;
    StartLocked();
  }
  if (earlier) Wake(*shared);
  return id;
}

void HttpLoop::Impl::RunTimers() {
  for (;;) {
    std::function<void()> fn;
    {
      MutexLock lock(&shared->mu);
      if (shared->stopping) return;
      fn = shared->timers.PopDue(clock->Now());
    }
    if (!fn) return;
    try {
      fn();
    } catch (...) {
      // Timers must not throw; one that does must not end the I/O thread.
    }
  }
}

int HttpLoop::Impl::SleepMsLocked() {
  double until = shared->timers.empty() ? kNever : shared->timers.NextDue();
  long long ms = -1;
  if (until != kNever) {
    ms = static_cast<long long>(std::ceil(std::max(until - clock->Now(), 0.0) * 1000));
  }
  if (timer_armed) {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(timer_due - Steady::now()).count();
    left = std::max<decltype(left)>(left, 0);
    if (ms < 0 || left < ms) {
      ms = left;
      until = std::min(until, clock->Now() + static_cast<double>(left) / 1000);
    }
  }
  shared->sleep_until = until;
  return static_cast<int>(std::min<long long>(ms, INT_MAX));
}

// Keeps epoll's interest in `socket` what curl asks for. `registered` (set
// with curl_multi_assign) tells a first ADD from a MOD; the errno fallback
// covers a descriptor number closed and reused meanwhile.
int HttpLoop::Impl::OnSocket(CURL*, curl_socket_t socket, int what, void* user, void* registered) {
  auto* impl = static_cast<Impl*>(user);
  int epoll_fd = impl->shared->epoll_fd;
  if (what == CURL_POLL_REMOVE) {
    epoll_ctl(epoll_fd, EPOLL_CTL_DEL, socket, nullptr);
    return 0;
  }
  epoll_event event{};
  event.events = ((what & CURL_POLL_IN) ? uint32_t{EPOLLIN} : 0) |
                 ((what & CURL_POLL_OUT) ? uint32_t{EPOLLOUT} : 0);
  event.data.fd = socket;
  if (epoll_ctl(epoll_fd, registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, socket, &event) != 0 &&
      (errno == ENOENT || errno == EEXIST)) {
    epoll_ctl(epoll_fd, errno == ENOENT ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, socket, &event);
  }
  if (registered == nullptr) curl_multi_assign(impl->multi, socket, impl);
  return 0;
}

void HttpLoop::Impl::Run() {
  epoll_event events[kMaxEvents];
  // Swapped with LoopShared's, so that both keep their capacity.
  std::vector<std::unique_ptr<Transfer>> queued;
  std::vector<uint64_t> cancelled;
  int wait_ms = 0;
  for (;;) {
    int count = epoll_wait(shared->epoll_fd, events, kMaxEvents, wait_ms);
    shared->awake.store(true, std::memory_order_relaxed);
    for (int i = 0; i < count; ++i) {
      int fd = events[i].data.fd;
      uint32_t ready = events[i].events;
      if (fd == shared->wake_fd) {
        uint64_t value;
        [[maybe_unused]] ssize_t got = read(fd, &value, sizeof value);
        continue;
      }
      int running = 0;
      curl_multi_socket_action(multi, fd,
                               ((ready & EPOLLIN) ? CURL_CSELECT_IN : 0) |
                                   ((ready & EPOLLOUT) ? CURL_CSELECT_OUT : 0) |
                                   ((ready & (EPOLLERR | EPOLLHUP)) ? CURL_CSELECT_ERR : 0),
                               &running);
    }
    RunCurlTimer();
    ReadCompleted();
    RunTimers();

    // Clear `awake` before looking, so that work queued after the look wakes us.
    shared->awake.store(false, std::memory_order_seq_cst);
    queued.clear();
    cancelled.clear();
    bool stopping;
    {
      MutexLock lock(&shared->mu);
      queued.swap(shared->queued);
      cancelled.swap(shared->cancelled);
      stopping = shared->stopping;
      if (!stopping && queued.empty() && cancelled.empty()) {
        wait_ms = SleepMsLocked();
        continue;
      }
      shared->sleep_until = 0;
    }
    if (stopping) return Drain(std::move(queued));
    shared->awake.store(true, std::memory_order_relaxed);
    for (auto& transfer : queued) Add(std::move(transfer));
    for (uint64_t id : cancelled) Abort(id);
    RunCurlTimer();  // starts the new transfers: curl set its timer to 0
    ReadCompleted();
    wait_ms = 0;  // look at the queues again, after the sockets
  }
}

// Ends every transfer with kCancelled, including those that `done` callbacks
// send while the loop shuts down.
void HttpLoop::Impl::Drain(std::vector<std::unique_ptr<Transfer>> queued) {
  for (;;) {
    for (auto& transfer : queued) {
      Finish(std::move(transfer), Status::Error(ErrorKind::kCancelled, "HTTP loop shut down"));
    }
    while (!active.empty()) {
      Finish(Take(active.begin()->first),
             Status::Error(ErrorKind::kCancelled, "HTTP loop shut down"));
    }
    MutexLock lock(&shared->mu);
    queued.clear();
    queued.swap(shared->queued);
    if (queued.empty()) return;
  }
}

void HttpLoop::Impl::Add(std::unique_ptr<Transfer> transfer) {
  const HttpRequest& request = transfer->request;
  if (request.cancel != nullptr && request.cancel->cancelled()) {
    return Finish(std::move(transfer), Status::Error(ErrorKind::kCancelled, "cancelled"));
  }
  if (Status scheme = CheckScheme(request); !scheme.ok()) {
    return Finish(std::move(transfer), std::move(scheme));
  }
  if (request.deadline > 0) {
    double remaining = request.deadline - clock->Now();
    if (remaining <= 0) {
      double waited = clock->Now() - transfer->sent_at;
      return Finish(std::move(transfer), TimedOutBeforeSent(request, waited));
    }
    transfer->timeout_ms = std::max(1L, static_cast<long>(std::ceil(remaining * 1000)));
  }

  if (Status opened = OpenMulti(); !opened.ok()) return Finish(std::move(transfer), opened);
  CURL* easy = idle.empty() ? curl_easy_init() : idle.back();
  if (!idle.empty()) idle.pop_back();
  if (easy == nullptr) {
    return Finish(std::move(transfer),
                  Status::Error(ErrorKind::kTransient, "curl_easy_init failed"));
  }
  transfer->easy = easy;
  PrepareEasy(easy, transfer.get());
  if (curl_multi_add_handle(multi, easy) != CURLM_OK) {
    return Finish(std::move(transfer),
                  Status::Error(ErrorKind::kTransient, "curl_multi_add_handle failed"));
  }
  uint64_t id = transfer->id;
  active.emplace(id, std::move(transfer));
}

void HttpLoop::Impl::Abort(uint64_t id) {
  auto transfer = Take(id);
  if (transfer == nullptr) return;  // already finished
  Finish(std::move(transfer), Status::Error(ErrorKind::kCancelled, "cancelled"));
}

void HttpLoop::Impl::Completed(CURL* easy, CURLcode code) {
  Transfer* t = nullptr;
  curl_easy_getinfo(easy, CURLINFO_PRIVATE, &t);
  auto transfer = Take(t->id);
  Status result = code == CURLE_OK
                      ? Status::Ok()
                      : TransferFailure(*transfer, code, clock->Now() - transfer->sent_at);
  long status = 0;
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
  transfer->response.status = static_cast<int>(status);
  Finish(std::move(transfer), std::move(result));
}

void HttpLoop::Impl::Finish(std::unique_ptr<Transfer> transfer, Status status) {
  if (CURL* easy = transfer->easy) {
    // Removing an unfinished transfer makes curl close its connection (over
    // HTTP/2, reset its stream); a finished one's connection stays in the
    // multi handle's cache for reuse.
    curl_multi_remove_handle(multi, easy);
    if (idle.size() < kIdleHandles) {
      curl_easy_reset(easy);  // also drops its pointers into `transfer`
      idle.push_back(easy);
    } else {
      curl_easy_cleanup(easy);
    }
    transfer->easy = nullptr;
  }
  curl_slist_free_all(transfer->header_list);
  transfer->header_list = nullptr;
  if (transfer->subscription != 0) transfer->request.cancel->Unsubscribe(transfer->subscription);
  HttpResponse response = std::move(transfer->response);
  if (!status.ok()) {
    response.status = 0;
    response.headers.clear();
    response.body.clear();
  }
  response.transport = std::move(status);
  response.seconds = clock->Now() - transfer->sent_at;
  HttpDone done = std::move(transfer->done);
  transfer.reset();
  in_flight.fetch_sub(1, std::memory_order_acq_rel);
  try {
    done(std::move(response));
  } catch (...) {
    // `done` must not throw; an exception here would end the I/O thread and
    // every transfer with it.
  }
}

HttpLoop::HttpLoop(Clock* clock) : impl_(std::make_unique<Impl>(clock)) {}

HttpLoop::~HttpLoop() {
  std::thread thread;
  {
    MutexLock lock(&impl_->shared->mu);
    impl_->shared->stopping = true;
    thread = std::move(impl_->shared->thread);
  }
  if (thread.joinable() && thread.get_id() == std::this_thread::get_id()) {
    // A timer or `done` let go of the last reference: the I/O thread cannot
    // join itself, so it drains, then deletes the Impl once out of Run.
    impl_->orphaned = true;
    thread.detach();
    impl_.release();
    return;
  }
  if (thread.joinable()) {
    Wake(*impl_->shared);
    thread.join();
  }
  // Timers that never ran go here, on the destroying thread.
  TimerQueue dropped;
  MutexLock lock(&impl_->shared->mu);
  std::swap(dropped, impl_->shared->timers);
}

Clock* HttpLoop::clock() { return &impl_->loop_clock; }

void HttpLoop::Send(HttpRequest request, HttpDone done) {
  auto transfer = std::make_unique<Transfer>();
  transfer->id = impl_->next_id.fetch_add(1, std::memory_order_relaxed) + 1;
  transfer->sent_at = impl_->clock->Now();
  transfer->request = std::move(request);
  transfer->done = std::move(done);
  impl_->in_flight.fetch_add(1, std::memory_order_acq_rel);
  if (const CancelToken* cancel = transfer->request.cancel) {
    // Runs on the cancelling thread, possibly after the transfer or the loop
    // is gone: it only queues the id, under the shared lock, for the loop.
    std::weak_ptr<LoopShared> weak = impl_->shared;
    uint64_t id = transfer->id;
    transfer->subscription = cancel->Subscribe([weak, id] {
      auto shared = weak.lock();
      if (shared == nullptr) return;
      {
        MutexLock lock(&shared->mu);
        if (shared->stopping) return;
        shared->cancelled.push_back(id);
      }
      Wake(*shared);
    });
  }
  LoopShared& shared = *impl_->shared;
  {
    MutexLock lock(&impl_->shared->mu);
    impl_->shared->queued.push_back(std::move(transfer));
    // Once stopping, the I/O thread is draining: this Send came from a `done`.
    impl_->StartLocked();
  }
  Wake(shared);
}

int64_t HttpLoop::in_flight() const { return impl_->in_flight.load(std::memory_order_acquire); }

}  // namespace keel
