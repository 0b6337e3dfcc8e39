// SqliteStore's side of its write queue (store/common/write_queue.h): how a
// run of queued records is committed, when giving up is final, and the
// checks that the database file is still the one opened. See
// sqlite_store.h for the contract.

#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>

#include "store/sqlite/sqlite_store.h"
#include "store/sqlite/sqlite_writer.h"

namespace keel {

// Commits runs of queued records for the WriteQueue, each in one
// transaction on the writer's connection, after checking that the database
// file is still the one opened.
class SqliteStore::QueueBackend final : public WriteQueue::Backend {
 public:
  explicit QueueBackend(SqliteStore* store) : store_(store) {}

  Status Commit(const std::vector<const QueuedRecord*>& records) override {
    Status status = store_->CheckFile();
    if (!status.ok()) {
      file_gone_ = true;
      return status;
    }
    sqlite::SqliteWriter* writer = store_->writer_.get();
    status = writer->Begin();
    if (!status.ok()) return status;
    for (const QueuedRecord* record : records) {
      status = Apply(writer, *record);
      // The rest of a failed transaction is not tried: it rolls back.
      if (!status.ok()) break;
    }
    if (status.ok()) status = writer->Commit();
    if (!status.ok()) writer->Rollback();
    return status;
  }

  // A run taken over belongs to another process, and a database file that
  // is gone holds nothing to resume.
  bool Hopeless(const Status& failure) override {
    return file_gone_ || store_->writer_->fenced();
  }

  std::string StallDetail(const Status& failure, double seconds) override {
    char detail[96];
    std::snprintf(detail, sizeof detail,
                  failure.kind() == ErrorKind::kTransient
                      ? " (another process has held the write lock for %.1fs)"
                      : " (writes failing for %.1fs)",
                  seconds);
    return detail;
  }

 private:
  static Status Apply(sqlite::SqliteWriter* writer, const QueuedRecord& write) {
    if (const auto* node = std::get_if<NodeRecord>(&write)) return writer->SaveNode(*node);
    if (const auto* finish = std::get_if<QueuedNodeFinish>(&write)) {
      Status saved = writer->SaveNode(finish->node);
      return saved.ok() ? writer->AppendEvent(finish->event) : saved;
    }
    if (const auto* event = std::get_if<EventRecord>(&write)) return writer->AppendEvent(*event);
    if (const auto* finish = std::get_if<QueuedRunFinish>(&write)) {
      return writer->FinishRun(finish->run_id, finish->status, finish->error, finish->finished_at);
    }
    const auto& beat = std::get<QueuedHeartbeat>(write);
    return writer->Heartbeat(beat.run_id, beat.now);
  }

  SqliteStore* const store_;
  bool file_gone_ = false;
};

std::unique_ptr<WriteQueue::Backend> SqliteStore::MakeQueueBackend() {
  return std::make_unique<QueueBackend>(this);
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

}  // namespace keel
