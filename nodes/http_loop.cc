// HttpLoop's loop (see http_loop.h): the I/O thread's epoll wait, its
// timers and its sleep, the loop's life, and Send, which queues a transfer
// for the thread. What the thread does with transfers and curl's sockets is
// in http_loop_transfers.cc.

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
#include <system_error>
#include <thread>

#include "engine/mutex.h"
#include "engine/timer_queue.h"
#include "nodes/http_loop_impl.h"
#include "nodes/http_transfer.h"

namespace keel {

using http_detail::LoopShared;
using http_detail::Steady;

namespace {

constexpr int kMaxEvents = 256;  // epoll events taken per wake-up
constexpr double kNever = std::numeric_limits<double>::infinity();

// Call after queueing work under `mu`, not holding it.
void Wake(LoopShared& shared) {
  if (shared.awake.exchange(true, std::memory_order_acq_rel)) return;
  uint64_t one = 1;
  // Fails only when the counter is full, and then the loop is being woken.
  [[maybe_unused]] ssize_t written = write(shared.wake_fd, &one, sizeof one);
}

}  // namespace

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
