#pragma once
// FakeClock: a Clock for tests whose time moves only when told.
//
// Advance() runs every timer that falls due, in order, on the calling thread.
// Safe to use from several threads; callbacks run without the lock held.

#include "engine/clock.h"
#include "engine/mutex.h"
#include "engine/timer_queue.h"

namespace keel {

class FakeClock final : public Clock {
 public:
  explicit FakeClock(double start = 1000.0, double wall_start = 1.7e9)
      : now_(start), wall_offset_(wall_start - start) {}

  double Now() override;
  double WallNow() override;
  TimerId After(double seconds, std::function<void()> fn) override;
  bool Cancel(TimerId id) override;

  // Moves time forward by `seconds`, firing due timers at their due times.
  void Advance(double seconds);
  // Advances straight to the next pending timer and fires it; false if none.
  bool RunNext();
  size_t pending();

 private:
  Mutex mu_;
  double now_ GUARDED_BY(mu_);
  double wall_offset_;   // constant
  TimerQueue queue_ GUARDED_BY(mu_);
};

}  // namespace keel
