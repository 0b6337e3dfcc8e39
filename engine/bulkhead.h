#pragma once
// Bulkhead: caps how many attempts run at once per key (a provider, a breaker
// key, or the whole run). Callers over the cap wait in FIFO order without
// holding a thread: they leave a callback that Release() hands the slot to.
// Thread-safe: one mutex guards every key.

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <unordered_map>

#include "engine/mutex.h"

namespace keel {

class Bulkhead {
 public:
  using Ticket = uint64_t;

  // Takes a slot of `key` (at most `limit` at once) and returns 0, or, when
  // all are taken, queues `on_granted` and returns its ticket. `on_granted`
  // later runs on the thread that calls Release, owning the slot; it must
  // not block.
  Ticket Acquire(const std::string& key, int limit, std::function<void()> on_granted);

  // Gives a slot of `key` back, handing it to the oldest waiter if any.
  void Release(const std::string& key);

  // Withdraws a queued waiter. True when it was still queued (it will never
  // run); false when it was already granted.
  bool Cancel(const std::string& key, Ticket ticket);

  int in_use(const std::string& key);

 private:
  struct Lane {
    int in_use = 0;
    std::deque<std::pair<Ticket, std::function<void()>>> waiting;
  };
  Mutex mu_;
  Ticket next_ GUARDED_BY(mu_) = 0;
  std::unordered_map<std::string, Lane> lanes_ GUARDED_BY(mu_);
};

}  // namespace keel
