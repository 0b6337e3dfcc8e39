#pragma once
// ArenaPool: oneTBB task arenas kept for reuse across Executor runs, lent to
// one run at a time. A process that runs many short executions one after
// another on many threads (`keel worker`: one per claimed node) takes an
// arena from the pool instead of creating and destroying one per run:
// oneTBB 2021.8 (Debian bookworm) can hang for good when arenas are created
// and destroyed at a high rate while other threads enqueue into them (a
// scheduler thread spins while the enqueuing thread waits on it; see
// docs/architecture.md, "Task arenas").
//
// Thread-safety: Acquire may be called from any thread; a Lease belongs to
// the thread that acquired it until it is destroyed. The pool must outlive
// its leases.

#include <memory>
#include <vector>

#include <oneapi/tbb/task_arena.h>

#include "engine/mutex.h"

namespace keel {

class ArenaPool {
 public:
  // Arenas of `concurrency` slots (one reserved for the thread that runs
  // the graph).
  explicit ArenaPool(int concurrency) : concurrency_(concurrency) {}

  // An arena of the pool, returned to it on destruction.
  class Lease {
   public:
    Lease(ArenaPool* pool, std::unique_ptr<tbb::task_arena> arena)
        : pool_(pool), arena_(std::move(arena)) {}
    Lease(Lease&&) = default;
    ~Lease() {
      if (arena_) pool_->Return(std::move(arena_));
    }
    tbb::task_arena& arena() { return *arena_; }

   private:
    ArenaPool* pool_;
    std::unique_ptr<tbb::task_arena> arena_;
  };

  // An idle arena, or a new one when every arena is lent.
  Lease Acquire();

 private:
  void Return(std::unique_ptr<tbb::task_arena> arena);

  const int concurrency_;
  Mutex mu_;
  std::vector<std::unique_ptr<tbb::task_arena>> idle_ GUARDED_BY(mu_);
};

}  // namespace keel
