#pragma once
// LuaMemory: a counting allocator for lua_newstate with a cap.
//
// Every pooled lua_State allocates through one LuaMemory. While the cap is
// armed (user Lua code runs), an allocation that would take the total past the
// limit returns NULL and Lua raises "not enough memory". While it is disarmed
// (host C++ code touches the state), allocations always succeed, so the Lua C
// API calls made with C++ objects alive cannot longjmp for lack of memory.
// The state starts disarmed; code arms it only around lua_pcall/lua_resume of
// user functions, and every C function the `keel` module registers disarms it
// again for its body (see CappedScope).
//
// Thread-safety: none. A LuaMemory belongs to one lua_State, which is used by
// one thread at a time.

#include <cstddef>
#include <string>

struct lua_State;

namespace keel {

class LuaMemory {
 public:
  explicit LuaMemory(size_t limit) : limit_(limit) {}
  LuaMemory(const LuaMemory&) = delete;
  LuaMemory& operator=(const LuaMemory&) = delete;

  // The lua_Alloc function; `ud` is the LuaMemory.
  static void* Alloc(void* ud, void* ptr, size_t osize, size_t nsize);
  // The LuaMemory of a state created with Alloc; null for other states.
  static LuaMemory* Of(lua_State* L);

  size_t used() const { return used_; }
  size_t limit() const { return limit_; }
  // Changes the cap, e.g. to a node's own `memory` option for one execution.
  void set_limit(size_t limit) { limit_ = limit; }
  // True once an allocation was refused since the last ClearExceeded().
  bool exceeded() const { return exceeded_; }
  void ClearExceeded() { exceeded_ = false; }

 private:
  friend class CappedScope;

  size_t limit_;
  size_t used_ = 0;
  bool armed_ = false;
  bool exceeded_ = false;
};

// Arms (or disarms) the cap of a LuaMemory for its lifetime and restores the
// previous setting when it dies. Scopes nest. A null memory makes it a no-op.
class CappedScope {
 public:
  CappedScope(LuaMemory* memory, bool armed)
      : memory_(memory), saved_(memory != nullptr && memory->armed_) {
    if (memory_ != nullptr) memory_->armed_ = armed;
  }
  ~CappedScope() {
    if (memory_ != nullptr) memory_->armed_ = saved_;
  }
  CappedScope(const CappedScope&) = delete;
  CappedScope& operator=(const CappedScope&) = delete;

 private:
  LuaMemory* memory_;
  bool saved_;
};

// "256 MiB", "1.50 MiB": a size as error messages print it.
std::string FormatMiB(size_t bytes);

}  // namespace keel
