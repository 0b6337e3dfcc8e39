#pragma once
// Scratch<T>: the per-thread encoder and reader that scripts/lua_json_encode.cc
// and scripts/lua_json_decode.cc reuse from call to call. Not for other
// callers.

#include <optional>

namespace keel::lua_json_detail {

// A per-thread T reused from call to call, so its buffers keep their
// capacity; a fresh T when the per-thread one is in use, which happens when an
// allocation runs a __gc finalizer that converts JSON itself. Only as a
// local variable: a Scratch belongs to the thread that made it.
template <typename T>
class Scratch {
 public:
  Scratch() {
    if (busy_) {
      item_ = &fresh_.emplace();
    } else {
      busy_ = true;
      item_ = &cached_;
    }
  }
  ~Scratch() {
    if (item_ == &cached_) busy_ = false;
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;

  T& operator*() { return *item_; }
  T* operator->() { return item_; }

 private:
  static thread_local T cached_;
  static thread_local bool busy_;
  std::optional<T> fresh_;
  T* item_;
};
template <typename T>
thread_local T Scratch<T>::cached_;
template <typename T>
thread_local bool Scratch<T>::busy_ = false;

}  // namespace keel::lua_json_detail
