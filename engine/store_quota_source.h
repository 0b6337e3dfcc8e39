#pragma once
// StoreQuotaSource: the QuotaSource of a process's runs, taking from the
// shared buckets of the Store the process opened (Store::TakeQuota), on a
// thread of its own so that a slow or unreachable database never holds a
// limiter's lock, a TBB worker or the timer thread.
//
// It is made before the store is open (scripts load first) and bound to the
// store with Attach; ScopedQuotaStore detaches it before the store closes.
// A take while no store is attached fails kTransient.
//
// Thread-safety: every method may be called from any thread. One mutex
// guards the request queue and the store pointer; the store is called with
// it released, and Attach waits for that call to end.

#include <deque>
#include <memory>
#include <string>
#include <thread>

#include "engine/clock.h"
#include "engine/mutex.h"
#include "engine/quota_source.h"
#include "engine/store.h"

namespace keel {

class StoreQuotaSource final : public QuotaSource {
 public:
  // `clock` gives the wall time a take passes to the store; must outlive
  // this.
  explicit StoreQuotaSource(Clock* clock);
  // Ends the thread; takes still queued get kCancelled.
  ~StoreQuotaSource() override;
  StoreQuotaSource(const StoreQuotaSource&) = delete;
  StoreQuotaSource& operator=(const StoreQuotaSource&) = delete;

  // Takes from `store` from now on (null: from none). Waits for a take in
  // progress on the previous store to end.
  void Attach(Store* store);

  void Take(const std::string& key, double want, double rate_per_s, double burst,
            std::function<void(Result<QuotaGrant>)> done) override;
  // Holds slots as the process's holder (host, pid, start time and a
  // random part, so two sources of one process are two holders).
  void HoldSlots(const std::string& key, int want, int limit,
                 std::function<void(Result<int>)> done) override;

  // Takes and holds made through a store (not failed before reaching one).
  uint64_t takes();

 private:
  // One call to make on the thread: `run` with the attached store (null:
  // none) and the wall time, or `cancel` when the source goes first.
  struct Request {
    std::function<void(Store* store, double now)> run;
    std::function<void(Status)> cancel;
  };
  // What the thread uses, shared with it: a callback may drop the last
  // reference to this source on the thread itself, which then ends alone.
  struct Core {
    Mutex mu;
    CondVar cv;  // the thread waits for requests; Attach for the call to end
    Store* store GUARDED_BY(mu) = nullptr;
    std::deque<Request> queue GUARDED_BY(mu);
    bool calling GUARDED_BY(mu) = false;  // the thread is in a store call
    bool stop GUARDED_BY(mu) = false;
    uint64_t takes GUARDED_BY(mu) = 0;
  };
  void Enqueue(Request request);
  static void Loop(std::shared_ptr<Core> core, Clock* clock);

  Clock* const clock_;
  const std::string holder_;
  const std::shared_ptr<Core> core_ = std::make_shared<Core>();
  Mutex thread_mu_;
  std::thread thread_ GUARDED_BY(thread_mu_);  // started by the first Take
};

// Attaches `source` to `store` for its own lifetime (either may be null:
// then it does nothing). Declare it after the store, so it goes first.
class ScopedQuotaStore {
 public:
  ScopedQuotaStore(StoreQuotaSource* source, Store* store) : source_(source) {
    if (source_ != nullptr) source_->Attach(store);
  }
  ~ScopedQuotaStore() {
    if (source_ != nullptr) source_->Attach(nullptr);
  }
  ScopedQuotaStore(const ScopedQuotaStore&) = delete;
  ScopedQuotaStore& operator=(const ScopedQuotaStore&) = delete;

 private:
  StoreQuotaSource* const source_;
};

}  // namespace keel
