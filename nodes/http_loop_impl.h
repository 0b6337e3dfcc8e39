#pragma once
// HttpLoop's inside (nodes/http_loop.h): the state its I/O thread shares with
// Send, timers and cancel callbacks, and the I/O thread's own side, for
// http_loop.cc (the loop: its thread, its timers, Send) and
// http_loop_transfers.cc (the multi handle, curl's sockets, adding and
// finishing transfers). Not for other callers.

#include <curl/curl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <thread>
#include <unordered_map>
#include <vector>

#include "engine/mutex.h"
#include "engine/timer_queue.h"
#include "nodes/http_loop.h"
#include "nodes/http_transfer.h"

namespace keel {
namespace http_detail {

using Steady = std::chrono::steady_clock;

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

}  // namespace http_detail

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
    if (multi != nullptr)
      curl_multi_cleanup(multi);  // may still call OnSocket: `shared` is still here
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
    impl->timer_due =
        http_detail::Steady::now() + std::chrono::milliseconds(std::max(0L, timeout_ms));
    return 0;
  }
  void RunCurlTimer() {
    if (multi == nullptr || !timer_armed || http_detail::Steady::now() < timer_due) return;
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
  const std::shared_ptr<http_detail::LoopShared> shared;
  CURLM* multi = nullptr;  // made by the first transfer (OpenMulti)
  std::atomic<int64_t> in_flight{0};
  std::atomic<uint64_t> next_id{0};
  std::unordered_map<uint64_t, std::unique_ptr<Transfer>> active;  // in the multi handle
  std::vector<CURL*> idle;   // reset easy handles, up to kIdleHandles
  bool timer_armed = false;  // curl asked to be called at `timer_due`
  http_detail::Steady::time_point timer_due;
  // Set by ~HttpLoop when a callback on the I/O thread destroyed the loop:
  // the thread then finishes and deletes the Impl itself.
  bool orphaned = false;
};

}  // namespace keel
