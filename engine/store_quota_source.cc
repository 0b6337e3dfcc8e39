#include "engine/store_quota_source.h"

#include <utility>

namespace keel {

StoreQuotaSource::StoreQuotaSource(Clock* clock) : clock_(clock) {}

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
    request.done(Status::Error(ErrorKind::kCancelled, "the process is shutting down"));
  }
}

void StoreQuotaSource::Attach(Store* store) {
  MutexLock lock(&core_->mu);
  while (core_->calling) core_->cv.Wait(&core_->mu);
  core_->store = store;
}

void StoreQuotaSource::Take(const std::string& key, double want, double rate_per_s, double burst,
                            std::function<void(Result<QuotaGrant>)> done) {
  {
    MutexLock lock(&core_->mu);
    if (!core_->stop) {
      core_->queue.push_back({key, want, rate_per_s, burst, std::move(done)});
      core_->cv.SignalAll();
      lock.Unlock();
      MutexLock start(&thread_mu_);
      if (!thread_.joinable()) thread_ = std::thread(&StoreQuotaSource::Loop, core_, clock_);
      return;
    }
  }
  done(Status::Error(ErrorKind::kCancelled, "the process is shutting down"));
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
    lock.Unlock();
    Result<QuotaGrant> grant =
        store == nullptr
            ? Result<QuotaGrant>(Status::Error(ErrorKind::kTransient, "no database is open"))
            : store->TakeQuota(request.key, request.want, request.rate, request.burst,
                               clock->WallNow());
    lock.Lock();
    if (store != nullptr) ++core->takes;  // counted before `done` tells of it
    lock.Unlock();
    request.done(std::move(grant));
    request.done = nullptr;  // what it holds may own the source: let it go before the lock
    lock.Lock();
    core->calling = false;
    core->cv.SignalAll();
  }
}

}  // namespace keel
