#include "store/common/write_queue.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

namespace keel {
namespace {

// The pause before retrying a failed commit, doubling up to the maximum.
constexpr auto kFirstRetryPause = std::chrono::milliseconds(10);
constexpr auto kMaxRetryPause = std::chrono::milliseconds(1000);
// How many drained chunks are kept for reuse.
constexpr size_t kMaxSpareChunks = 16;
// How long the writer lets a burst gather before committing it together.
constexpr auto kGatherDelay = std::chrono::milliseconds(3);

}  // namespace

std::string WriteQueue::Backend::StallDetail(const Status& failure, double seconds) {
  char detail[64];
  std::snprintf(detail, sizeof detail, " (writes failing for %.1fs)", seconds);
  return detail;
}

WriteQueue::WriteQueue(Backend* backend, double stall_timeout)
    : backend_(backend), stall_timeout_(stall_timeout) {
  writer_thread_ = std::thread([this] { WriterLoop(); });
}

WriteQueue::~WriteQueue() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
  }
  work_cv_.Signal();
  writer_thread_.join();
}

void WriteQueue::Enqueue(Write write) {
  bool wake;
  {
    MutexLock lock(&mu_);
    if (queue_.empty() || queue_.back().size() == kChunkSize) {
      if (spare_.empty()) {
        queue_.emplace_back().reserve(kChunkSize);
      } else {
        queue_.push_back(std::move(spare_.back()));
        spare_.pop_back();
      }
    }
    queue_.back().push_back(std::move(write));
    ++queued_;
    wake = writer_idle_ || (gathering_ && queued_ - written_ == kGatherMax);
  }
  if (wake) work_cv_.Signal();
}

void WriteQueue::Push(QueuedRecord record) { Enqueue(Write(std::move(record))); }

Status WriteQueue::Flush() {
  MutexLock lock(&mu_);
  const uint64_t target = queued_;
  Hurry hurry(this);
  while (written_ < target && given_up_.ok()) done_cv_.Wait(&mu_);
  return given_up_;
}

Status WriteQueue::Health() {
  MutexLock lock(&mu_);
  return given_up_;
}

uint64_t WriteQueue::Backlog() {
  MutexLock lock(&mu_);
  return queued_ - written_;
}

Status WriteQueue::Call(std::function<Status()> fn, bool urgent) {
  {
    MutexLock lock(&mu_);
    if (!given_up_.ok()) return given_up_;
  }
  SyncCall call;
  call.fn = std::move(fn);
  if (!urgent) {
    Enqueue(&call);
  } else {
    bool wake;
    {
      MutexLock lock(&mu_);
      urgent_.push_back(&call);
      wake = writer_idle_;
    }
    if (wake) work_cv_.Signal();
  }
  MutexLock lock(&mu_);
  Hurry hurry(this);
  while (!call.done) done_cv_.Wait(&mu_);
  return call.result;
}

WriteQueue::Hurry::Hurry(WriteQueue* queue) : queue_(queue) {
  ++queue_->hurry_;
  if (queue_->gathering_) queue_->work_cv_.Signal();
}

WriteQueue::Hurry::~Hurry() {
  queue_->mu_.AssertHeld();
  --queue_->hurry_;
}

void WriteQueue::EndCall(SyncCall* call, Status result) {
  {
    MutexLock lock(&mu_);
    call->result = std::move(result);
    call->done = true;
  }
  done_cv_.SignalAll();
}

void WriteQueue::RunUrgent() {
  std::vector<SyncCall*> urgent;
  Status given_up;
  {
    MutexLock lock(&mu_);
    urgent.swap(urgent_);
    given_up = given_up_;
  }
  for (SyncCall* call : urgent) EndCall(call, given_up.ok() ? call->fn() : given_up);
}

void WriteQueue::WriterLoop() {
  std::vector<Chunk> batch;
  MutexLock lock(&mu_);
  for (;;) {
    writer_idle_ = true;
    while (queue_.empty() && urgent_.empty() && !stop_) work_cv_.Wait(&mu_);
    writer_idle_ = false;
    if (queue_.empty() && urgent_.empty()) return;  // stopping, and everything is written
    auto in_a_hurry = [&]() EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return hurry_ > 0 || !urgent_.empty() || stop_ || queued_ - written_ >= kGatherMax;
    };
    if (!in_a_hurry() && given_up_.ok()) {
      gathering_ = true;
      const auto deadline = std::chrono::steady_clock::now() + kGatherDelay;
      while (!in_a_hurry() && work_cv_.WaitUntil(&mu_, deadline)) {
      }
      gathering_ = false;
    }
    batch.swap(queue_);
    const uint64_t end = queued_;
    lock.Unlock();
    RunUrgent();
    Drain(batch);
    for (Chunk& chunk : batch) chunk.clear();
    lock.Lock();
    while (!batch.empty() && spare_.size() < kMaxSpareChunks) {
      spare_.push_back(std::move(batch.back()));
      batch.pop_back();
    }
    batch.clear();
    written_ = end;
    done_cv_.SignalAll();
  }
}

void WriteQueue::Drain(const std::vector<Chunk>& batch) {
  std::vector<const QueuedRecord*> records;
  bool ok = Health().ok();
  auto commit = [&] {
    if (records.empty()) return;
    if (ok) {
      Status status = backend_->Commit(records);
      if (!status.ok()) ok = Retry(records, std::move(status));
    }
    records.clear();
  };
  for (const Chunk& chunk : batch) {
    for (const Write& write : chunk) {
      if (const auto* record = std::get_if<QueuedRecord>(&write)) {
        records.push_back(record);
        continue;
      }
      commit();
      SyncCall* call = std::get<SyncCall*>(write);
      if (ok) {
        EndCall(call, call->fn());
      } else {
        EndCall(call, Health());
      }
    }
  }
  commit();
}

bool WriteQueue::Retry(const std::vector<const QueuedRecord*>& records, Status failure) {
  const auto started = std::chrono::steady_clock::now();
  const auto stall = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(stall_timeout_));
  auto pause = std::chrono::duration_cast<std::chrono::steady_clock::duration>(kFirstRetryPause);
  for (;;) {
    const auto waited = std::chrono::steady_clock::now() - started;
    const bool hopeless = backend_->Hopeless(failure);
    if (hopeless || waited >= stall) {
      std::string why = failure.message();
      if (!hopeless) {
        why += backend_->StallDetail(failure, std::chrono::duration<double>(waited).count());
      }
      MutexLock lock(&mu_);
      // A run taken over belongs to another process; any other cause leaves
      // a run that can be resumed once it is gone.
      given_up_ = Status::Error(hopeless ? ErrorKind::kPermanent : ErrorKind::kTransient,
                                std::move(why));
      done_cv_.SignalAll();
      return false;
    }
    {
      MutexLock lock(&mu_);
      const auto deadline = std::chrono::steady_clock::now() + pause;
      while (urgent_.empty() && work_cv_.WaitUntil(&mu_, deadline)) {
      }
    }
    // Urgent calls (breaker updates) go ahead of the held writes.
    RunUrgent();
    failure = backend_->Commit(records);
    if (failure.ok()) return true;
    pause = std::min<std::chrono::steady_clock::duration>(pause * 2, kMaxRetryPause);
  }
}

}  // namespace keel
