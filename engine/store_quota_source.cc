#include "engine/store_quota_source.h"

#include <random>
#include <string>
#include <utility>

#include "engine/process_owner.h"

namespace keel {

namespace {

std::string NewHolder() {
  Owner self = CurrentOwner();
  std::random_device random;
  return self.host + ":" + std::to_string(self.pid) + ":" + std::to_string(self.start_ticks) +
         ":" + std::to_string(random());
}

Status NoStore() { return Status::Error(ErrorKind::kTransient, "no database is open"); }

}  // namespace

StoreQuotaSource::StoreQuotaSource(Clock* clock) : clock_(clock), holder_(NewHolder()) {}

StoreQuotaSource::~StoreQuotaSource() {
  std::deque<Request> left;
  {
    MutexLock lock(&core_->mu);
    core_->stop = true;
    left = std::move(core_->queue);
    core_->queue.clear();
  }
  core_->cv.SignalAll();
  {
    MutexLock lock(&thread_mu_);
    if (thread_.joinable()) {
      if (thread_.get_id() == std::this_thread::get_id()) {
        thread_.detach();  // a callback on the thread dropped the last reference
      } else {
        thread_.join();
      }
    }
  }
  for (Request& request : left) {
    request.cancel(Status::Error(ErrorKind::kCancelled, "the process is shutting down"));
  }
}

void StoreQuotaSource::Attach(Store* store) {
  MutexLock lock(&core_->mu);
  while (core_->calling) core_->cv.Wait(&core_->mu);
  core_->store = store;
}

void StoreQuotaSource::Take(const std::string& key, double want, double rate_per_s, double burst,
                            std::function<void(Result<QuotaGrant>)> done) {
  auto answer = std::make_shared<std::function<void(Result<QuotaGrant>)>>(std::move(done));
  Enqueue({[=](Store* store, double now) {
             (*answer)(store == nullptr ? Result<QuotaGrant>(NoStore())
                                        : store->TakeQuota(key, want, rate_per_s, burst, now));
           },
           [answer](Status why) { (*answer)(std::move(why)); }});
}

void StoreQuotaSource::HoldSlots(const std::string& key, int want, int limit,
                                 std::function<void(Result<int>)> done) {
  auto answer = std::make_shared<std::function<void(Result<int>)>>(std::move(done));
  Enqueue({[=, holder = holder_](Store* store, double now) {
             (*answer)(store == nullptr
                           ? Result<int>(NoStore())
                           : store->HoldSlots(key, holder, want, limit, kSlotLeaseSeconds, now));
           },
           [answer](Status why) { (*answer)(std::move(why)); }});
}

void StoreQuotaSource::Enqueue(Request request) {
  {
    MutexLock lock(&core_->mu);
    if (!core_->stop) {
      core_->queue.push_back(std::move(request));
      core_->cv.SignalAll();
      lock.Unlock();
      MutexLock start(&thread_mu_);
      if (!thread_.joinable()) thread_ = std::thread(&StoreQuotaSource::Loop, core_, clock_);
      return;
    }
  }
  request.cancel(Status::Error(ErrorKind::kCancelled, "the process is shutting down"));
}

uint64_t StoreQuotaSource::takes() {
  MutexLock lock(&core_->mu);
  return core_->takes;
}

void StoreQuotaSource::Loop(std::shared_ptr<Core> core, Clock* clock) {
  MutexLock lock(&core->mu);
  for (;;) {
    while (!core->stop && core->queue.empty()) core->cv.Wait(&core->mu);
    if (core->stop) return;
    Request request = std::move(core->queue.front());
    core->queue.pop_front();
    Store* store = core->store;
    core->calling = true;
    if (store != nullptr) ++core->takes;  // counted before the answer tells of it
    lock.Unlock();
    request.run(store, clock->WallNow());
    // What they hold may own the source: let it go before the lock.
    request = Request();
    lock.Lock();
    core->calling = false;
    core->cv.SignalAll();
  }
}

}  // namespace keel
