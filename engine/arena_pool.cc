#include "engine/arena_pool.h"

namespace keel {

ArenaPool::Lease ArenaPool::Acquire() {
  {
    MutexLock lock(&mu_);
    if (!idle_.empty()) {
      std::unique_ptr<tbb::task_arena> arena = std::move(idle_.back());
      idle_.pop_back();
      return Lease(this, std::move(arena));
    }
  }
  auto arena = std::make_unique<tbb::task_arena>(concurrency_);
  arena->initialize();
  return Lease(this, std::move(arena));
}

void ArenaPool::Return(std::unique_ptr<tbb::task_arena> arena) {
  MutexLock lock(&mu_);
  idle_.push_back(std::move(arena));
}

}  // namespace keel
