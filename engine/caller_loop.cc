#include "engine/caller_loop.h"

namespace keel {

void CallerLoop::Reserve() {
  MutexLock lock(&mu_);
  ++reserved_;
}

void CallerLoop::Release() {
  MutexLock lock(&mu_);
  if (--reserved_ == 0) cv_.SignalAll();
}

void CallerLoop::Post(std::function<void()> fn) {
  MutexLock lock(&mu_);
  posted_.push_back(std::move(fn));
  cv_.SignalAll();
}

void CallerLoop::Run(const std::function<void()>& run_tasks) {
  for (;;) {
    run_tasks();
    std::vector<std::function<void()>> batch;
    {
      MutexLock lock(&mu_);
      while (posted_.empty() && reserved_ > 0) cv_.Wait(&mu_);
      if (posted_.empty()) return;
      batch.swap(posted_);
    }
    for (std::function<void()>& fn : batch) fn();
  }
}

}  // namespace keel
