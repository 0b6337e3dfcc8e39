#pragma once
// CancelToken: tells a running attempt to stop.
//
// The executor owns one per attempt and cancels it from any thread (attempt
// or total timeout, a satisfied join, a cancelled run). The node body polls
// cancelled() (Lua: from its instruction hook) and may Subscribe a callback
// to wake a wait (a sleep timer, an HTTP transfer) at once. All methods are
// thread-safe.

#include <atomic>
#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "engine/mutex.h"

namespace keel {

class CancelToken {
 public:
  // Sets the flag and runs every subscribed callback once, on this thread.
  void Cancel() {
    std::vector<std::pair<uint64_t, std::function<void()>>> callbacks;
    {
      MutexLock lock(&mu_);
      if (cancelled_.exchange(true, std::memory_order_acq_rel)) return;
      callbacks.swap(callbacks_);
    }
    for (auto& [id, fn] : callbacks) fn();
  }
  bool cancelled() const { return cancelled_.load(std::memory_order_acquire); }

  // Calls `fn` when the token is cancelled; at once (on this thread) if it
  // already is. `fn` must not block. Returns an id for Unsubscribe.
  // Listening does not change the token: callable through a const pointer.
  uint64_t Subscribe(std::function<void()> fn) const {
    {
      MutexLock lock(&mu_);
      if (!cancelled()) {
        callbacks_.emplace_back(++next_id_, std::move(fn));
        return next_id_;
      }
    }
    fn();
    return 0;
  }
  // Drops a callback that has not started. A concurrent Cancel() may already
  // be running it; callers whose callback touches freed state must allow for that.
  void Unsubscribe(uint64_t id) const {
    MutexLock lock(&mu_);
    for (auto it = callbacks_.begin(); it != callbacks_.end(); ++it) {
      if (it->first == id) {
        callbacks_.erase(it);
        return;
      }
    }
  }

 private:
  std::atomic<bool> cancelled_{false};
  mutable Mutex mu_;
  mutable uint64_t next_id_ GUARDED_BY(mu_) = 0;
  mutable std::vector<std::pair<uint64_t, std::function<void()>>> callbacks_ GUARDED_BY(mu_);
};

}  // namespace keel
