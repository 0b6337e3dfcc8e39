#pragma once
// CancelToken: tells a running attempt to stop.
//
// The executor owns one per attempt and sets it from any thread; the node body
// polls cancelled() (for Lua: from the instruction hook) from its own thread.

#include <atomic>

namespace keel {

class CancelToken {
 public:
  void Cancel() { cancelled_.store(true, std::memory_order_release); }
  bool cancelled() const { return cancelled_.load(std::memory_order_acquire); }

 private:
  std::atomic<bool> cancelled_{false};
};

}  // namespace keel
