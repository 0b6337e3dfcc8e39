#pragma once
// TimerQueue: ordered pending timers, shared by SystemClock's timer thread and
// FakeClock. Not thread-safe by itself: each owner guards it with its own lock.

#include <cstdint>
#include <functional>
#include <map>
#include <utility>

#include "engine/clock.h"

namespace keel {

class TimerQueue {
 public:
  TimerId Add(double due, std::function<void()> fn);
  bool Cancel(TimerId id);
  bool empty() const { return by_due_.empty(); }
  size_t size() const { return due_of_.size(); }
  double NextDue() const { return by_due_.begin()->first.first; }
  // Removes and returns the earliest timer if it is due at `now`; else an empty function.
  std::function<void()> PopDue(double now);

 private:
  TimerId next_id_ = 1;
  std::map<std::pair<double, TimerId>, std::function<void()>> by_due_;
  std::map<TimerId, double> due_of_;
};

}  // namespace keel
