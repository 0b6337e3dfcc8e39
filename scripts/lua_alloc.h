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
// Blocks of up to kSmallBlock bytes (nearly everything a script allocates:
// strings, closures, tables, prototypes) come from free lists per size
// class carved out of 64 KiB chunks, and larger ones from malloc. A state of
// a 100k-node script holds millions of small objects: this keeps malloc's
// per-block header and its free-time consolidation off them, and closing
// the state returns whole chunks.
//
// Thread-safety: none. A LuaMemory belongs to one lua_State, which is used by
// one thread at a time.

#include <cstddef>
#include <string>
#include <vector>

struct lua_State;

namespace keel {

class LuaMemory {
 public:
  explicit LuaMemory(size_t limit) : limit_(limit) {}
  ~LuaMemory();
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
  static constexpr size_t kGrain = 16;        // size classes are multiples of this
  static constexpr size_t kSmallBlock = 256;  // larger blocks come from malloc
  static constexpr size_t kChunkBytes = size_t{64} << 10;

  void* Take(size_t size);              // a block of 1..kSmallBlock bytes, or null
  void Give(void* block, size_t size);  // back to its class's free list

  void* free_[kSmallBlock / kGrain] = {};  // per class: a singly linked list
  char* bump_ = nullptr;                   // the unused rest of the newest chunk
  size_t bump_left_ = 0;
  std::vector<void*> chunks_;

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
