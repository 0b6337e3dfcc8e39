#pragma once
// Mutex, MutexLock, CondVar: std::mutex and std::condition_variable with
// the annotations clang's -Wthread-safety checks (engine/thread_annotations.h).
// libstdc++'s own types carry none, so members marked GUARDED_BY name a
// keel::Mutex. Modelled on LevelDB's port::Mutex / port::CondVar and
// Abseil's CondVar::Wait(Mutex*).
//
//   Mutex mu_;
//   CondVar done_cv_;
//   bool done_ GUARDED_BY(mu_) = false;
//
//   void Finish() {
//     MutexLock lock(&mu_);
//     done_ = true;
//     done_cv_.SignalAll();
//   }
//   void AwaitDone() {
//     MutexLock lock(&mu_);
//     while (!done_) done_cv_.Wait(&mu_);
//   }
//
// Waits are loops in the caller, not predicates: the condition is then read
// in the function that holds the lock, where the analysis can see it.
//
// Thread-safety: Mutex and CondVar are for use from many threads; a
// MutexLock belongs to the thread that made it.

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "engine/thread_annotations.h"

namespace keel {

class CondVar;

class CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void Unlock() UNLOCK_FUNCTION() { mu_.unlock(); }
  // Takes the mutex if it is free; true when it did.
  bool TryLock() EXCLUSIVE_TRYLOCK_FUNCTION(true) { return mu_.try_lock(); }
  // Tells the analysis the caller holds this mutex (for code it cannot
  // follow, such as a callback run under the lock). Checks nothing at run time.
  void AssertHeld() ASSERT_EXCLUSIVE_LOCK() {}

 private:
  friend class CondVar;
  std::mutex mu_;
};

// Holds a Mutex from construction to destruction, like std::unique_lock:
// Unlock() and Lock() release and retake it within the scope.
class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex* mu) EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() UNLOCK_FUNCTION() {
    if (held_) mu_->Unlock();
  }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

  void Unlock() UNLOCK_FUNCTION() {
    mu_->Unlock();
    held_ = false;
  }
  void Lock() EXCLUSIVE_LOCK_FUNCTION() {
    mu_->Lock();
    held_ = true;
  }

 private:
  Mutex* const mu_;
  bool held_ = true;
};

// A condition variable waited on with a held Mutex. Every wait on one
// CondVar must pass the same Mutex. Waits may wake spuriously: callers loop
// on their condition.
class CondVar {
 public:
  CondVar() = default;
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  // Releases `mu`, waits for a signal, and takes `mu` again.
  void Wait(Mutex* mu) EXCLUSIVE_LOCKS_REQUIRED(mu) {
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    cv_.wait(lock);
    lock.release();
  }
  // Like Wait, giving up after `timeout`. False when it timed out.
  template <class Rep, class Period>
  bool WaitFor(Mutex* mu, const std::chrono::duration<Rep, Period>& timeout)
      EXCLUSIVE_LOCKS_REQUIRED(mu) {
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    bool signalled = cv_.wait_for(lock, timeout) == std::cv_status::no_timeout;
    lock.release();
    return signalled;
  }
  // Like Wait, giving up at `deadline`. False when it timed out.
  template <class Clock, class Duration>
  bool WaitUntil(Mutex* mu, const std::chrono::time_point<Clock, Duration>& deadline)
      EXCLUSIVE_LOCKS_REQUIRED(mu) {
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    bool signalled = cv_.wait_until(lock, deadline) == std::cv_status::no_timeout;
    lock.release();
    return signalled;
  }

  void Signal() { cv_.notify_one(); }
  void SignalAll() { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

}  // namespace keel
