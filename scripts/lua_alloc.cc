#include "scripts/lua_alloc.h"

#include <cstdio>
#include <cstdlib>

#include "lua.hpp"

namespace keel {

void* LuaMemory::Alloc(void* ud, void* ptr, size_t osize, size_t nsize) {
  auto* memory = static_cast<LuaMemory*>(ud);
  // When ptr is NULL, osize encodes the kind of object, not a size.
  size_t old_size = ptr != nullptr ? osize : 0;
  if (nsize == 0) {
    free(ptr);
    memory->used_ -= old_size;
    return nullptr;
  }
  if (memory->armed_ && nsize > old_size && memory->used_ - old_size + nsize > memory->limit_) {
    memory->exceeded_ = true;
    return nullptr;
  }
  void* block = realloc(ptr, nsize);
  if (block != nullptr) memory->used_ = memory->used_ - old_size + nsize;
  return block;
}

LuaMemory* LuaMemory::Of(lua_State* L) {
  void* ud = nullptr;
  if (lua_getallocf(L, &ud) != &LuaMemory::Alloc) return nullptr;
  return static_cast<LuaMemory*>(ud);
}

std::string FormatMiB(size_t bytes) {
  constexpr size_t kMiB = size_t{1} << 20;
  char buf[64];
  if (bytes % kMiB == 0) {
    snprintf(buf, sizeof(buf), "%zu MiB", bytes / kMiB);
  } else {
    snprintf(buf, sizeof(buf), "%.2f MiB", static_cast<double>(bytes) / kMiB);
  }
  return buf;
}

}  // namespace keel
