#include "engine/sqlite_store.h"

#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <system_error>
#include <thread>

#include "engine/sqlite_reader.h"
#include "engine/sqlite_schema.h"
#include "engine/sqlite_util.h"
#include "engine/sqlite_writer.h"

namespace keel {
namespace {

// How often a write transaction is retried after the busy timeout ran out.
constexpr int kBusyRetries = 3;

// Records per queue chunk (about 50 KiB), and how many drained chunks are
// kept for reuse.
constexpr size_t kChunkSize = 256;
constexpr size_t kMaxSpareChunks = 16;
// How long the writer lets a burst of records gather before committing them
// together, and how many end the wait early. One transaction per burst
// rather than one per record costs the writer far fewer page writes; a node's
// checkpoint is then durable a few milliseconds later, never out of order.
constexpr auto kGatherDelay = std::chrono::milliseconds(3);
constexpr uint64_t kGatherMax = 4 * kChunkSize;

// The write-ahead log is truncated back to this size after checkpoints.
constexpr char kJournalSizeLimit[] = "PRAGMA journal_size_limit = 67108864";

// The pause between attempts at switching a new database to WAL mode.
constexpr auto kWalRetryPause = std::chrono::milliseconds(2);

Status NoDatabase(const std::string& path) {
  return Status::Error(ErrorKind::kPermanent, "no keel database at " + path);
}

// One attempt at switching `conn` to WAL mode.
Status SwitchToWal(sqlite::Connection* conn) {
  sqlite::Statement wal;
  Status status = wal.Prepare(conn, "PRAGMA journal_mode = WAL");
  std::string mode;
  if (status.ok() && wal.Step(&status, "switching to WAL mode")) mode = wal.Text(0);
  wal.Reset();
  if (!status.ok()) return status;
  if (mode != "wal") {
    return Status::Error(ErrorKind::kPermanent,
                         conn->path() + ": cannot use WAL mode (journal mode stays " + mode + ")");
  }
  return Status::Ok();
}

// Switches `conn` to WAL mode and the requested durability. Switching a new
// database upgrades a read lock to a write lock, and SQLite fails such an
// upgrade at once, without a busy wait, while another connection reads or
// switches too: so it is retried until `busy_timeout` seconds have passed.
Status Configure(sqlite::Connection* conn, SqliteDurability durability, double busy_timeout) {
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                            std::chrono::duration<double>(busy_timeout));
  Status status = SwitchToWal(conn);
  while (status.kind() == ErrorKind::kTransient && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(kWalRetryPause);
    status = SwitchToWal(conn);
  }
  if (!status.ok()) return status;
  status = conn->Exec(durability == SqliteDurability::kFull ? "PRAGMA synchronous = FULL"
                                                            : "PRAGMA synchronous = NORMAL",
                      "setting durability");
  if (status.ok()) status = conn->Exec(kJournalSizeLimit, "limiting the WAL size");
  return status;
}

int LatestVersion() { return sqlite::KeelMigrations().back().version; }

}  // namespace

Result<bool> SqliteStore::Exists(const std::string& path, double busy_timeout) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return false;
  if (std::filesystem::is_directory(path, ec)) {
    return Status::Error(ErrorKind::kPermanent, path + " is a directory, not a keel database");
  }
  auto kind = sqlite::InspectFile(path, LatestVersion(), busy_timeout);
  if (!kind.ok()) return kind.status();
  return *kind == sqlite::DatabaseKind::kKeel;
}

Result<std::unique_ptr<SqliteStore>> SqliteStore::Open(const std::string& path,
                                                       const SqliteStoreOptions& options) {
  // Look before touching: a file that is not ours must stay byte-identical,
  // and even switching to WAL mode would write to it.
  auto exists = Exists(path, options.busy_timeout);
  if (!exists.ok()) return exists.status();
  if (!*exists && !options.create_if_missing) return NoDatabase(path);

  const int create = options.create_if_missing ? SQLITE_OPEN_CREATE : 0;
  auto conn =
      sqlite::Connection::Open(path, path, SQLITE_OPEN_READWRITE | create, options.busy_timeout);
  if (!conn.ok()) return conn.status();
  // Again on the connection that writes, in case the file changed meanwhile.
  auto kind = sqlite::ClassifyDatabase(conn->get(), LatestVersion());
  if (!kind.ok()) return kind.status();
  Status status = Configure(conn->get(), options.durability, options.busy_timeout);
  if (status.ok()) status = sqlite::Migrate(conn->get(), sqlite::KeelMigrations(), kBusyRetries);
  if (!status.ok()) return status;
  auto writer = sqlite::SqliteWriter::Create(std::move(conn).value(), kBusyRetries);
  if (!writer.ok()) return writer.status();

  auto read_conn =
      sqlite::Connection::Open(path, path, SQLITE_OPEN_READWRITE, options.busy_timeout);
  if (!read_conn.ok()) return read_conn.status();
  status = (*read_conn)->Exec("PRAGMA query_only = 1", "opening for reading");
  if (!status.ok()) return status;
  auto reader = sqlite::SqliteReader::Create(std::move(read_conn).value());
  if (!reader.ok()) return reader.status();
  Clock* clock = options.clock != nullptr ? options.clock : SystemClock();
  return std::unique_ptr<SqliteStore>(
      new SqliteStore(path, clock, std::move(writer).value(), std::move(reader).value()));
}

SqliteStore::SqliteStore(std::string path, Clock* clock,
                         std::unique_ptr<sqlite::SqliteWriter> writer,
                         std::unique_ptr<sqlite::SqliteReader> reader)
    : path_(std::move(path)),
      clock_(clock),
      writer_(std::move(writer)),
      reader_(std::move(reader)) {
  writer_thread_ = std::thread([this] { WriterLoop(); });
}

SqliteStore::~SqliteStore() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  work_cv_.notify_one();
  writer_thread_.join();
}

void SqliteStore::Enqueue(Write write) {
  bool wake;
  {
    std::lock_guard<std::mutex> lock(mu_);
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
    // A gathering writer needs waking only when the burst is big enough.
    wake = writer_idle_ || (gathering_ && queued_ - written_ == kGatherMax);
  }
  if (wake) work_cv_.notify_one();
}

void SqliteStore::SaveNode(NodeRecord node) { Enqueue(std::move(node)); }

void SqliteStore::AppendEvent(EventRecord event) { Enqueue(std::move(event)); }

void SqliteStore::FinishRun(std::string run_id, RunStatus status, std::string error,
                            double finished_at) {
  Enqueue(FinishWrite{std::move(run_id), status, std::move(error), finished_at});
}

void SqliteStore::Heartbeat(std::string run_id, double now) {
  Enqueue(HeartbeatWrite{std::move(run_id), now});
}

Status SqliteStore::Flush() {
  std::unique_lock<std::mutex> lock(mu_);
  const uint64_t target = queued_;
  Hurry hurry(this);
  done_cv_.wait(lock, [&] { return written_ >= target; });
  Status error = std::move(write_error_);
  write_error_ = Status::Ok();
  return error;
}

Status SqliteStore::CallOnWriter(std::function<Status(sqlite::SqliteWriter*)> fn, bool urgent) {
  SyncCall call;
  call.fn = std::move(fn);
  if (!urgent) {
    Enqueue(&call);
  } else {
    bool wake;
    {
      std::lock_guard<std::mutex> lock(mu_);
      urgent_.push_back(&call);
      wake = writer_idle_;
    }
    if (wake) work_cv_.notify_one();
  }
  std::unique_lock<std::mutex> lock(mu_);
  Hurry hurry(this);
  done_cv_.wait(lock, [&] { return call.done; });
  return call.result;
}

SqliteStore::Hurry::Hurry(SqliteStore* store) : store_(store) {
  ++store_->hurry_;
  if (store_->gathering_) store_->work_cv_.notify_one();
}

SqliteStore::Hurry::~Hurry() { --store_->hurry_; }

void SqliteStore::RunCall(SyncCall* call) {
  Status result = call->fn(writer_.get());
  {
    std::lock_guard<std::mutex> lock(mu_);
    call->result = std::move(result);
    call->done = true;
  }
  done_cv_.notify_all();
}

Status SqliteStore::CreateRun(const RunRecord& run) {
  return CallOnWriter([&](sqlite::SqliteWriter* writer) { return writer->CreateRun(run); });
}

Status SqliteStore::ClaimRun(const RunRecord& run,
                             const std::function<bool(const Owner&, double)>& owner_alive) {
  return CallOnWriter(
      [&](sqlite::SqliteWriter* writer) { return writer->ClaimRun(run, owner_alive); });
}

Result<int64_t> SqliteStore::DeleteFinishedBefore(double wall_time) {
  int64_t deleted = 0;
  Status status = CallOnWriter([&](sqlite::SqliteWriter* writer) {
    auto result = writer->DeleteFinishedBefore(wall_time);
    if (!result.ok()) return result.status();
    deleted = *result;
    return Status::Ok();
  });
  if (!status.ok()) return status;
  return deleted;
}

void SqliteStore::WriterLoop() {
  std::vector<Chunk> batch;
  std::vector<SyncCall*> urgent;
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    writer_idle_ = true;
    work_cv_.wait(lock, [&] { return !queue_.empty() || !urgent_.empty() || stop_; });
    writer_idle_ = false;
    if (queue_.empty() && urgent_.empty()) return;  // stopping, and everything is written
    auto in_a_hurry = [&] {
      return hurry_ > 0 || !urgent_.empty() || stop_ || queued_ - written_ >= kGatherMax;
    };
    if (!in_a_hurry()) {
      gathering_ = true;
      work_cv_.wait_for(lock, kGatherDelay, in_a_hurry);
      gathering_ = false;
    }
    urgent.swap(urgent_);
    batch.swap(queue_);
    const uint64_t end = queued_;
    lock.unlock();
    for (SyncCall* call : urgent) RunCall(call);
    urgent.clear();
    Status status = WriteBatch(batch);
    for (Chunk& chunk : batch) chunk.clear();
    lock.lock();
    while (!batch.empty() && spare_.size() < kMaxSpareChunks) {
      spare_.push_back(std::move(batch.back()));
      batch.pop_back();
    }
    batch.clear();
    written_ = end;
    if (!status.ok() && write_error_.ok()) write_error_ = std::move(status);
    done_cv_.notify_all();
  }
}

Status SqliteStore::WriteBatch(const std::vector<Chunk>& batch) {
  Status first_error;
  bool in_transaction = false;
  Status transaction;  // the first failure inside the open transaction
  auto end_transaction = [&] {
    if (!in_transaction) return;
    if (transaction.ok()) transaction = writer_->Commit();
    if (!transaction.ok()) {
      writer_->Rollback();
      if (first_error.ok()) first_error = transaction;
    }
    in_transaction = false;
    transaction = Status::Ok();
  };
  for (const Chunk& chunk : batch) {
    for (const Write& write : chunk) {
      if (auto* call = std::get_if<SyncCall*>(&write)) {
        end_transaction();
        RunCall(*call);
        continue;
      }
      if (!in_transaction) {
        transaction = writer_->Begin();
        in_transaction = true;
      }
      // After a failure the rest of the transaction is skipped: it rolls back.
      if (transaction.ok()) transaction = Apply(write);
    }
  }
  end_transaction();
  return first_error;
}

Status SqliteStore::Apply(const Write& write) {
  if (const auto* node = std::get_if<NodeRecord>(&write)) return writer_->SaveNode(*node);
  if (const auto* event = std::get_if<EventRecord>(&write)) return writer_->AppendEvent(*event);
  if (const auto* finish = std::get_if<FinishWrite>(&write)) {
    return writer_->FinishRun(finish->run_id, finish->status, finish->error, finish->finished_at);
  }
  const auto& beat = std::get<HeartbeatWrite>(write);
  return writer_->Heartbeat(beat.run_id, beat.now);
}

Result<BreakerSnapshot> SqliteStore::UpdateBreaker(
    const std::string& key, const std::function<void(BreakerSnapshot&)>& update) {
  BreakerSnapshot snapshot;
  Status status = CallOnWriter(
      [&](sqlite::SqliteWriter* writer) {
        auto result = writer->UpdateBreaker(key, update, clock_->WallNow());
        if (!result.ok()) return result.status();
        snapshot = std::move(result).value();
        return Status::Ok();
      },
      /*urgent=*/true);
  if (!status.ok()) return status;
  return snapshot;
}

Result<int64_t> SqliteStore::ResetBreakers(const std::string& key) {
  int64_t deleted = 0;
  Status status = CallOnWriter([&](sqlite::SqliteWriter* writer) {
    auto result = writer->ResetBreakers(key);
    if (!result.ok()) return result.status();
    deleted = *result;
    return Status::Ok();
  });
  if (!status.ok()) return status;
  return deleted;
}

Result<std::vector<BreakerRow>> SqliteStore::ListBreakers() {
  std::lock_guard<std::mutex> lock(read_mu_);
  return reader_->ListBreakers();
}

Result<RunRecord> SqliteStore::GetRun(const std::string& id) {
  std::lock_guard<std::mutex> lock(read_mu_);
  return reader_->GetRun(id);
}

Result<std::vector<NodeRecord>> SqliteStore::GetNodes(const std::string& run_id) {
  std::lock_guard<std::mutex> lock(read_mu_);
  return reader_->GetNodes(run_id);
}

Result<std::vector<EventRecord>> SqliteStore::GetEvents(const std::string& run_id) {
  std::lock_guard<std::mutex> lock(read_mu_);
  return reader_->GetEvents(run_id);
}

Result<std::vector<RunListing>> SqliteStore::ListRuns(const RunFilter& filter) {
  std::lock_guard<std::mutex> lock(read_mu_);
  return reader_->ListRuns(filter);
}

}  // namespace keel
