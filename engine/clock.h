#pragma once
// Clock: the only way keel reads time or waits.
//
// Everything that depends on time (timeouts, backoff, cooldowns, heartbeats,
// timestamps) takes a Clock*, so tests substitute FakeClock and run instantly.
// All methods of every Clock are safe to call from any thread.

#include <cstdint>
#include <functional>

namespace keel {

using TimerId = uint64_t;

class Clock {
 public:
  virtual ~Clock() = default;
  // Monotonic seconds since an arbitrary origin; for deadlines and durations.
  virtual double Now() = 0;
  // Seconds since the Unix epoch; for timestamps written to the store.
  virtual double WallNow() = 0;
  // Calls `fn` once, on the clock's timer thread, no earlier than `seconds`
  // from now. `fn` must not block. Returns an id for Cancel. Never fails.
  virtual TimerId After(double seconds, std::function<void()> fn) = 0;
  // Cancels a pending timer. Returns true when `fn` will not run; false when it
  // already ran, is running, or the id is unknown.
  virtual bool Cancel(TimerId id) = 0;
};

// The process's real clock. Its timer thread starts with the first After().
Clock* SystemClock();

}  // namespace keel
