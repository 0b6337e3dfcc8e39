// SqliteStore's writer thread: group commit, retries of failed batches,
// giving up on the storage, and the checks that the database file is still
// the one opened. See sqlite_store.h for the contract.

#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>

#include "store/sqlite/sqlite_store.h"
#include "store/sqlite/sqlite_writer.h"

namespace keel {
namespace {

// The pause before retrying a failed batch, doubling up to the maximum.
constexpr auto kFirstRetryPause = std::chrono::milliseconds(10);
constexpr auto kMaxRetryPause = std::chrono::milliseconds(1000);

// How many drained chunks are kept for reuse.
constexpr size_t kMaxSpareChunks = 16;
// How long the writer lets a burst of records gather before committing them
// together (up to kGatherMax records). One transaction per burst rather than
// one per record costs the writer far fewer page writes; a node's
// checkpoint is then durable a few milliseconds later, never out of order.
constexpr auto kGatherDelay = std::chrono::milliseconds(3);

}  // namespace

void SqliteStore::WriterLoop() {
  std::vector<Chunk> batch;
  std::vector<SyncCall*> urgent;
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
    urgent.swap(urgent_);
    batch.swap(queue_);
    const uint64_t end = queued_;
    const Status given_up = given_up_;
    lock.Unlock();
    Cursor cursor;
    Status status;
    if (!given_up.ok()) {
      for (SyncCall* call : urgent) EndCall(call, given_up);
      FailCalls(batch, cursor);
    } else {
      for (SyncCall* call : urgent) RunCall(call);
      status = CheckFile();
      if (status.ok()) status = WriteBatch(batch, &cursor);
    }
    urgent.clear();
    lock.Lock();
    if (!status.ok()) RetryBatch(batch, &cursor, std::move(status));
    lock.Unlock();
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

void SqliteStore::RetryBatch(const std::vector<Chunk>& batch, Cursor* cursor, Status failure) {
  const auto started = std::chrono::steady_clock::now();
  const auto stall = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(stall_timeout_));
  auto pause = std::chrono::duration_cast<std::chrono::steady_clock::duration>(kFirstRetryPause);
  bool hopeless = false;  // retrying cannot help: the file is gone or the run taken over
  std::vector<SyncCall*> urgent;
  for (;;) {
    failing_ = failure;
    const auto waited = std::chrono::steady_clock::now() - started;
    if (hopeless || writer_->fenced() || waited >= stall) {
      const double seconds = std::chrono::duration<double>(waited).count();
      std::string why = failure.message();
      char detail[96] = "";
      if (failure.kind() == ErrorKind::kTransient) {
        std::snprintf(detail, sizeof detail,
                      " (another process has held the write lock for %.1fs)", seconds);
      } else if (!hopeless && !writer_->fenced()) {
        std::snprintf(detail, sizeof detail, " (writes failing for %.1fs)", seconds);
      }
      why += detail;
      // A run taken over belongs to another process, and a database file
      // that is gone holds nothing to resume; any other cause leaves a run
      // that can be resumed once it is gone.
      const bool final_cause = hopeless || writer_->fenced();
      given_up_ = Status::Error(final_cause ? ErrorKind::kPermanent : ErrorKind::kTransient,
                                std::move(why));
      break;
    }
    const auto deadline = std::chrono::steady_clock::now() + pause;
    while (urgent_.empty() && work_cv_.WaitUntil(&mu_, deadline)) {
    }
    urgent.swap(urgent_);
    mu_.Unlock();
    // Breaker updates go ahead of the held writes, as they always do.
    for (SyncCall* call : urgent) RunCall(call);
    urgent.clear();
    failure = CheckFile();
    hopeless = !failure.ok();
    if (failure.ok()) failure = WriteBatch(batch, cursor);
    mu_.Lock();
    if (failure.ok()) {
      failing_ = Status::Ok();
      return;
    }
    pause = std::min<std::chrono::steady_clock::duration>(pause * 2, kMaxRetryPause);
  }
  mu_.Unlock();
  FailCalls(batch, *cursor);
  mu_.Lock();
}

void SqliteStore::FailCalls(const std::vector<Chunk>& batch, Cursor cursor) {
  Status given_up;
  {
    MutexLock lock(&mu_);
    given_up = given_up_;
  }
  for (size_t c = cursor.chunk; c < batch.size(); ++c) {
    for (size_t w = c == cursor.chunk ? cursor.index : 0; w < batch[c].size(); ++w) {
      if (auto* call = std::get_if<SyncCall*>(&batch[c][w])) EndCall(*call, given_up);
    }
  }
}

Status SqliteStore::CheckFile() const {
  struct stat st;
  if (stat(path_.c_str(), &st) != 0) {
    if (errno != ENOENT) return Status::Ok();  // cannot tell; the writes will say
    return Status::Error(ErrorKind::kPermanent,
                         "the database file " + path_ + " was deleted while in use");
  }
  if (static_cast<uint64_t>(st.st_dev) != file_dev_ ||
      static_cast<uint64_t>(st.st_ino) != file_ino_) {
    return Status::Error(ErrorKind::kPermanent,
                         "the database file " + path_ + " was replaced by another file while in use");
  }
  return Status::Ok();
}

Status SqliteStore::WriteBatch(const std::vector<Chunk>& batch, Cursor* cursor) {
  bool in_transaction = false;
  Status transaction;    // the first failure inside the open transaction
  Cursor begun = *cursor;  // where the open transaction began
  Cursor at = *cursor;
  auto end_transaction = [&] {
    if (!in_transaction) return Status::Ok();
    in_transaction = false;
    if (transaction.ok()) transaction = writer_->Commit();
    if (!transaction.ok()) {
      writer_->Rollback();
      *cursor = begun;
      return transaction;
    }
    *cursor = at;
    return Status::Ok();
  };
  for (; at.chunk < batch.size(); ++at.chunk, at.index = 0) {
    const Chunk& chunk = batch[at.chunk];
    for (; at.index < chunk.size(); ++at.index) {
      if (auto* call = std::get_if<SyncCall*>(&chunk[at.index])) {
        Status committed = end_transaction();
        if (!committed.ok()) return committed;
        RunCall(*call);
        *cursor = Cursor{at.chunk, at.index + 1};
        continue;
      }
      if (!in_transaction) {
        begun = at;
        transaction = writer_->Begin();
        in_transaction = true;
        if (!transaction.ok()) {
          in_transaction = false;
          *cursor = begun;
          return transaction;
        }
      }
      transaction = Apply(chunk[at.index]);
      // The rest of a failed transaction is not tried: it rolls back.
      if (!transaction.ok()) return end_transaction();
    }
  }
  return end_transaction();
}

Status SqliteStore::Apply(const Write& write) {
  if (const auto* node = std::get_if<NodeRecord>(&write)) return writer_->SaveNode(*node);
  if (const auto* finish = std::get_if<NodeFinish>(&write)) {
    Status saved = writer_->SaveNode(finish->node);
    return saved.ok() ? writer_->AppendEvent(finish->event) : saved;
  }
  if (const auto* event = std::get_if<EventRecord>(&write)) return writer_->AppendEvent(*event);
  if (const auto* finish = std::get_if<FinishWrite>(&write)) {
    return writer_->FinishRun(finish->run_id, finish->status, finish->error, finish->finished_at);
  }
  const auto& beat = std::get<HeartbeatWrite>(write);
  return writer_->Heartbeat(beat.run_id, beat.now);
}

}  // namespace keel
