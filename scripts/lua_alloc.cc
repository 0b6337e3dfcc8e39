#include "scripts/lua_alloc.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "lua.hpp"

namespace keel {

LuaMemory::~LuaMemory() {
  for (void* chunk : chunks_) free(chunk);
}

void* LuaMemory::Take(size_t size) {
  size_t index = (size - 1) / kGrain;
  if (void* block = free_[index]) {
    free_[index] = *static_cast<void**>(block);
    return block;
  }
  size_t rounded = (index + 1) * kGrain;
  if (bump_left_ < rounded) {
    // The rest of the old chunk goes to the free lists, largest pieces first.
    while (bump_left_ >= kGrain) {
      size_t piece = std::min(bump_left_ / kGrain * kGrain, kSmallBlock);
      Give(bump_, piece);
      bump_ += piece;
      bump_left_ -= piece;
    }
    void* chunk = malloc(kChunkBytes);
    if (chunk == nullptr) return nullptr;
    chunks_.push_back(chunk);
    bump_ = static_cast<char*>(chunk);
    bump_left_ = kChunkBytes;
  }
  void* block = bump_;
  bump_ += rounded;
  bump_left_ -= rounded;
  return block;
}

void LuaMemory::Give(void* block, size_t size) {
  size_t index = (size - 1) / kGrain;
  *static_cast<void**>(block) = free_[index];
  free_[index] = block;
}

void* LuaMemory::Alloc(void* ud, void* ptr, size_t osize, size_t nsize) {
  auto* memory = static_cast<LuaMemory*>(ud);
  // When ptr is NULL, osize encodes the kind of object, not a size. Lua
  // always passes a block's true size back, which picks its class.
  size_t old_size = ptr != nullptr ? osize : 0;
  if (nsize == 0) {
    if (old_size > kSmallBlock) {
      free(ptr);
    } else if (ptr != nullptr) {
      memory->Give(ptr, old_size);
    }
    memory->used_ -= old_size;
    return nullptr;
  }
  if (memory->armed_ && nsize > old_size && memory->used_ - old_size + nsize > memory->limit_) {
    memory->exceeded_ = true;
    return nullptr;
  }
  void* block;
  if (old_size > kSmallBlock && nsize > kSmallBlock) {
    block = realloc(ptr, nsize);
  } else if (ptr != nullptr && old_size <= kSmallBlock && nsize <= kSmallBlock &&
             (old_size - 1) / kGrain == (nsize - 1) / kGrain) {
    block = ptr;  // the same size class
  } else {
    block = nsize > kSmallBlock ? malloc(nsize) : memory->Take(nsize);
    if (block != nullptr && ptr != nullptr) {
      memcpy(block, ptr, std::min(old_size, nsize));
      if (old_size > kSmallBlock) {
        free(ptr);
      } else {
        memory->Give(ptr, old_size);
      }
    }
  }
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
