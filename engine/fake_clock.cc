#include "engine/fake_clock.h"

namespace keel {

double FakeClock::Now() {
  MutexLock lock(&mu_);
  return now_;
}

double FakeClock::WallNow() { return Now() + wall_offset_; }

TimerId FakeClock::After(double seconds, std::function<void()> fn) {
  MutexLock lock(&mu_);
  return queue_.Add(now_ + (seconds > 0 ? seconds : 0), std::move(fn));
}

bool FakeClock::Cancel(TimerId id) {
  MutexLock lock(&mu_);
  return queue_.Cancel(id);
}

void FakeClock::Advance(double seconds) {
  MutexLock lock(&mu_);
  double target = now_ + seconds;
  for (;;) {
    if (queue_.empty() || queue_.NextDue() > target) break;
    if (queue_.NextDue() > now_) now_ = queue_.NextDue();
    auto fn = queue_.PopDue(now_);
    lock.Unlock();
    fn();
    lock.Lock();
  }
  if (target > now_) now_ = target;
}

bool FakeClock::RunNext() {
  MutexLock lock(&mu_);
  if (queue_.empty()) return false;
  if (queue_.NextDue() > now_) now_ = queue_.NextDue();
  auto fn = queue_.PopDue(now_);
  lock.Unlock();
  fn();
  return true;
}

size_t FakeClock::pending() {
  MutexLock lock(&mu_);
  return queue_.size();
}

}  // namespace keel
