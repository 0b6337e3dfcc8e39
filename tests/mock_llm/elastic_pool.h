#pragma once
// ElasticPool: the server's worker threads. Starts a thread only when a job
// arrives and every started thread is busy, up to `max_threads`; beyond that
// jobs queue. So a server allowed hundreds of concurrent slow requests starts
// at once and costs nothing for the threads it never needs.
//
// Thread-safe: enqueue from any thread until shutdown; shutdown once, from
// the thread that owns the pool (the library's listening thread, after it
// stopped accepting). mu_ guards every member.

#include <httplib.h>

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace keel::mock {

class ElasticPool : public httplib::TaskQueue {
 public:
  explicit ElasticPool(size_t max_threads) : max_threads_(max_threads) {}
  ~ElasticPool() override = default;

  void enqueue(std::function<void()> job) override;
  // Runs the queued jobs, then joins every thread.
  void shutdown() override;

 private:
  void Work();

  const size_t max_threads_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> jobs_;  // guarded by mu_
  std::vector<std::thread> threads_;        // guarded by mu_
  size_t idle_ = 0;                         // guarded by mu_: threads waiting for a job
  bool stopping_ = false;                   // guarded by mu_
};

}  // namespace keel::mock
