#include "engine/store_quota_source.h"

#include <utility>
#include <vector>

namespace keel {

StoreQuotaSource::StoreQuotaSource(Clock* clock) : clock_(clock) {}

StoreQuotaSource::~StoreQuotaSource() {
  std::thread thread;
  std::deque<Request> left;
  {
    MutexLock lock(&mu_);
    stop_ = true;
    thread = std::move(thread_);
    left = std::move(queue_);
    queue_.clear();
  }
  cv_.SignalAll();
  if (thread.joinable()) thread.join();
  for (Request& request : left) {
    request.done(Status::Error(ErrorKind::kCancelled, "the process is shutting down"));
  }
}

void StoreQuotaSource::Attach(Store* store) {
  MutexLock lock(&mu_);
  while (calling_) cv_.Wait(&mu_);
  store_ = store;
}

void StoreQuotaSource::Take(const std::string& key, double want, double rate_per_s, double burst,
                            std::function<void(Result<QuotaGrant>)> done) {
  {
    MutexLock lock(&mu_);
    if (!stop_) {
      queue_.push_back({key, want, rate_per_s, burst, std::move(done)});
      if (!thread_.joinable()) thread_ = std::thread([this] { Loop(); });
      cv_.SignalAll();
      return;
    }
  }
  done(Status::Error(ErrorKind::kCancelled, "the process is shutting down"));
}

uint64_t StoreQuotaSource::takes() {
  MutexLock lock(&mu_);
  return takes_;
}

void StoreQuotaSource::Loop() {
  MutexLock lock(&mu_);
  for (;;) {
    while (!stop_ && queue_.empty()) cv_.Wait(&mu_);
    if (stop_) return;
    Request request = std::move(queue_.front());
    queue_.pop_front();
    Store* store = store_;
    calling_ = true;
    lock.Unlock();
    Result<QuotaGrant> grant =
        store == nullptr
            ? Result<QuotaGrant>(Status::Error(ErrorKind::kTransient, "no database is open"))
            : store->TakeQuota(request.key, request.want, request.rate, request.burst,
                               clock_->WallNow());
    request.done(std::move(grant));
    lock.Lock();
    calling_ = false;
    if (store != nullptr) ++takes_;
    cv_.SignalAll();
  }
}

}  // namespace keel
