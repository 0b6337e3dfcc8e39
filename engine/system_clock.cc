#include <chrono>
#include <thread>

#include "engine/clock.h"
#include "engine/mutex.h"
#include "engine/timer_queue.h"

namespace keel {
namespace {

// Real time; one detached-at-exit timer thread runs due callbacks in order.
class RealClock final : public Clock {
 public:
  double Now() override {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  double WallNow() override {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  TimerId After(double seconds, std::function<void()> fn) override {
    MutexLock lock(&mu_);
    if (!thread_started_) {
      thread_started_ = true;
      // The clock lives for the whole process; the thread never joins.
      std::thread([this] { Loop(); }).detach();
    }
    TimerId id = queue_.Add(Now() + (seconds > 0 ? seconds : 0), std::move(fn));
    cv_.Signal();
    return id;
  }
  bool Cancel(TimerId id) override {
    MutexLock lock(&mu_);
    return queue_.Cancel(id);
  }

 private:
  void Loop() {
    MutexLock lock(&mu_);
    for (;;) {
      if (queue_.empty()) {
        cv_.Wait(&mu_);
        continue;
      }
      double now = Now();
      if (auto fn = queue_.PopDue(now)) {
        lock.Unlock();
        fn();
        lock.Lock();
        continue;
      }
      cv_.WaitFor(&mu_, std::chrono::duration<double>(queue_.NextDue() - now));
    }
  }

  Mutex mu_;
  CondVar cv_;
  TimerQueue queue_ GUARDED_BY(mu_);
  bool thread_started_ GUARDED_BY(mu_) = false;
};

}  // namespace

Clock* SystemClock() {
  static RealClock* clock = new RealClock();  // never destroyed: its thread may still run at exit
  return clock;
}

}  // namespace keel
