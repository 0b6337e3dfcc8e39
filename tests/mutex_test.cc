#include "engine/mutex.h"

#include <doctest/doctest.h>

#include <chrono>
#include <thread>

using keel::CondVar;
using keel::Mutex;
using keel::MutexLock;

namespace {

// Whether another thread could take `mu` right now.
bool FreeElsewhere(Mutex& mu) {
  bool got = false;
  std::thread([&] {
    if (mu.TryLock()) {
      got = true;
      mu.Unlock();
    }
  }).join();
  return got;
}

struct Flag {
  Mutex mu;
  CondVar cv;
  bool set GUARDED_BY(mu) = false;
  bool seen GUARDED_BY(mu) = false;
};

}  // namespace

TEST_CASE("MutexLock holds its mutex for the scope; Unlock and Lock release and retake it") {
  Mutex mu;
  {
    MutexLock lock(&mu);
    CHECK_FALSE(FreeElsewhere(mu));
    lock.Unlock();
    CHECK(FreeElsewhere(mu));
    lock.Lock();
    CHECK_FALSE(FreeElsewhere(mu));
  }
  CHECK(FreeElsewhere(mu));
  {
    MutexLock lock(&mu);
    lock.Unlock();
  }  // released once, by Unlock
  CHECK(FreeElsewhere(mu));
}

TEST_CASE("CondVar::Wait wakes on a signal with the mutex held again" * doctest::timeout(10)) {
  Flag flag;
  std::thread waiter([&] {
    MutexLock lock(&flag.mu);
    while (!flag.set) flag.cv.Wait(&flag.mu);
    flag.seen = true;
  });
  {
    MutexLock lock(&flag.mu);
    flag.set = true;
  }
  flag.cv.SignalAll();
  waiter.join();
  MutexLock lock(&flag.mu);
  CHECK(flag.seen);
}

TEST_CASE("CondVar::WaitFor and WaitUntil time out holding the mutex" * doctest::timeout(10)) {
  Mutex mu;
  CondVar cv;
  MutexLock lock(&mu);
  CHECK_FALSE(cv.WaitFor(&mu, std::chrono::milliseconds(1)));
  CHECK_FALSE(FreeElsewhere(mu));
  CHECK_FALSE(cv.WaitUntil(&mu, std::chrono::steady_clock::now() - std::chrono::seconds(1)));
  CHECK_FALSE(FreeElsewhere(mu));
}

TEST_CASE("CondVar::WaitFor returns true when signalled in time" * doctest::timeout(10)) {
  Flag flag;
  bool signalled = false;
  std::thread waiter([&] {
    MutexLock lock(&flag.mu);
    flag.seen = true;  // the waiter holds the lock: a signal sent after this reaches it
    flag.cv.SignalAll();
    while (!flag.set) signalled = flag.cv.WaitFor(&flag.mu, std::chrono::seconds(30));
  });
  {
    MutexLock lock(&flag.mu);
    while (!flag.seen) flag.cv.Wait(&flag.mu);
    flag.set = true;
  }
  flag.cv.SignalAll();
  waiter.join();
  CHECK(signalled);
}
