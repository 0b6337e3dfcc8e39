#pragma once
// CallerLoop: how a run's graph waits in an arena of one slot (a worker's
// slot, engine/arena_pool.h, or a run given one worker), where the thread
// that runs the graph is the arena's only thread.
//
// Left to oneTBB, that thread waits inside graph.wait_for_all() while the
// run's nodes wait on timers, HTTP replies or sleeps: it spins, then yields,
// before it sleeps, at every such wait. With a worker's sixteen slots on two
// cores those spins were most of the worker's CPU. Here the graph's wait
// context counts only its tasks; the run's reservations (RunEnv::reserve)
// and posted closures (RunEnv::post) are counted by the loop, and the thread
// sleeps on a condition variable until a closure is posted or the last
// reservation is released.
//
// Reserve, Release and Post may be called from any thread; Run and
// OnOwner by the thread that made the loop, inside the arena.

#include <functional>
#include <thread>
#include <vector>

#include "engine/mutex.h"

namespace keel {

class CallerLoop {
 public:
  CallerLoop() : owner_(std::this_thread::get_id()) {}

  void Reserve();
  void Release();
  // `fn` runs on the owner thread, in Run.
  void Post(std::function<void()> fn);
  // Whether the calling thread is the owner (may touch the graph directly).
  bool OnOwner() const { return std::this_thread::get_id() == owner_; }

  // Runs the posted closures, each time after `run_tasks` (which runs the
  // graph's tasks until none is left), until no task, closure or
  // reservation is left.
  void Run(const std::function<void()>& run_tasks);

 private:
  const std::thread::id owner_;
  Mutex mu_;
  CondVar cv_;  // signalled when a closure is posted or the last reservation goes
  int reserved_ GUARDED_BY(mu_) = 0;
  std::vector<std::function<void()>> posted_ GUARDED_BY(mu_);
};

}  // namespace keel
