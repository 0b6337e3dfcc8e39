#include "store/sqlite/sqlite_store.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>

#include <chrono>
#include <filesystem>
#include <system_error>
#include <thread>

#include "store/sqlite/sqlite_reader.h"
#include "store/sqlite/sqlite_schema.h"
#include "store/sqlite/sqlite_vacuum.h"
#include "store/sqlite/sqlite_util.h"
#include "store/sqlite/sqlite_writer.h"

namespace keel {
namespace {

// How often a migration's write transaction is retried after the busy
// timeout ran out.
constexpr int kBusyRetries = 3;

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
  // A new, empty file: set incremental vacuum before anything is written,
  // the only time SQLite can set it without rewriting the file. Best effort
  // (a lost race leaves it to `keel gc`'s one VACUUM, see sqlite_vacuum.h);
  // only a new file, since the pragma takes the write lock.
  auto pages = sqlite::ReadPragma(conn, "page_count");
  if (pages.ok() && *pages == 0) (void)conn->Exec(sqlite::kAutoVacuumPragma, "enabling vacuum");
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
  auto conn = sqlite::Connection::Open(path, path, SQLITE_OPEN_READWRITE | create,
                                       options.busy_timeout, options.vfs);
  if (!conn.ok()) return conn.status();
  // Again on the connection that writes, in case the file changed meanwhile.
  auto kind = sqlite::ClassifyDatabase(conn->get(), LatestVersion());
  if (!kind.ok()) return kind.status();
  Status status = Configure(conn->get(), options.durability, options.busy_timeout);
  if (status.ok()) status = sqlite::Migrate(conn->get(), sqlite::KeelMigrations(), kBusyRetries);
  if (!status.ok()) return status;
  auto writer = sqlite::SqliteWriter::Create(std::move(conn).value(), options.busy_timeout);
  if (!writer.ok()) return writer.status();

  auto read_conn = sqlite::Connection::Open(path, path, SQLITE_OPEN_READWRITE,
                                            options.busy_timeout, options.vfs);
  if (!read_conn.ok()) return read_conn.status();
  status = (*read_conn)->Exec("PRAGMA query_only = 1", "opening for reading");
  if (!status.ok()) return status;
  auto reader = sqlite::SqliteReader::Create(std::move(read_conn).value());
  if (!reader.ok()) return reader.status();
  return std::unique_ptr<SqliteStore>(
      new SqliteStore(path, options, std::move(writer).value(), std::move(reader).value()));
}

SqliteStore::SqliteStore(std::string path, const SqliteStoreOptions& options,
                         std::unique_ptr<sqlite::SqliteWriter> writer,
                         std::unique_ptr<sqlite::SqliteReader> reader)
    : path_(std::move(path)),
      clock_(options.clock != nullptr ? options.clock : SystemClock()),
      stall_timeout_(options.stall_timeout),
      writer_(std::move(writer)),
      reader_(std::move(reader)) {
  struct stat st;
  if (stat(path_.c_str(), &st) == 0) {
    file_dev_ = st.st_dev;
    file_ino_ = st.st_ino;
  }
  backend_ = MakeQueueBackend();
  queue_ = std::make_unique<WriteQueue>(backend_.get(), stall_timeout_);
}

SqliteStore::~SqliteStore() { queue_.reset(); }

void SqliteStore::SaveNode(NodeRecord node) { queue_->Push(std::move(node)); }

void SqliteStore::FinishNode(NodeRecord node, EventRecord event) {
  queue_->Push(QueuedNodeFinish{std::move(node), std::move(event)});
}

void SqliteStore::AppendEvent(EventRecord event) { queue_->Push(std::move(event)); }

void SqliteStore::FinishRun(std::string run_id, RunStatus status, std::string error,
                            double finished_at) {
  queue_->Push(QueuedRunFinish{std::move(run_id), status, std::move(error), finished_at});
}

void SqliteStore::Heartbeat(std::string run_id, double now) {
  queue_->Push(QueuedHeartbeat{std::move(run_id), now});
}

Status SqliteStore::Flush() { return queue_->Flush(); }

uint64_t SqliteStore::Backlog() { return queue_->Backlog(); }

Status SqliteStore::WriteHealth() { return queue_->Health(); }

Status SqliteStore::CallOnWriter(std::function<Status(sqlite::SqliteWriter*)> fn, bool urgent) {
  return queue_->Call([&] { return fn(writer_.get()); }, urgent);
}

Status SqliteStore::CreateRun(const RunRecord& run) {
  return CallOnWriter([&](sqlite::SqliteWriter* writer) { return writer->CreateRun(run); });
}

Result<ClaimedRun> SqliteStore::ClaimRun(
    const RunRecord& run, int64_t expected_epoch,
    const std::function<bool(const Owner&, double)>& owner_alive) {
  ClaimedRun claimed;
  Status status = CallOnWriter([&](sqlite::SqliteWriter* writer) {
    auto result = writer->ClaimRun(run, expected_epoch, owner_alive);
    if (!result.ok()) return result.status();
    claimed = std::move(result).value();
    return Status::Ok();
  });
  if (!status.ok()) return status;
  return claimed;
}

Result<ClaimedRun> SqliteStore::ClaimRunForRerun(
    const RunRecord& run, int64_t expected_epoch, const std::string& from,
    const std::vector<std::string>& rerun,
    const std::function<bool(const Owner&, double)>& owner_alive) {
  ClaimedRun claimed;
  const sqlite::SqliteWriter::Rerun request{from, rerun};
  Status status = CallOnWriter([&](sqlite::SqliteWriter* writer) {
    auto result = writer->ClaimRun(run, expected_epoch, owner_alive, &request);
    if (!result.ok()) return result.status();
    claimed = std::move(result).value();
    return Status::Ok();
  });
  if (!status.ok()) return status;
  return claimed;
}

Status SqliteStore::CreateForkedRun(const RunRecord& run, const std::vector<NodeRecord>& kept) {
  return CallOnWriter([&](sqlite::SqliteWriter* writer) { return writer->CreateRun(run, kept); });
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
  MutexLock lock(&read_mu_);
  return reader_->ListBreakers();
}

Result<RunRecord> SqliteStore::GetRun(const std::string& id) {
  MutexLock lock(&read_mu_);
  return reader_->GetRun(id);
}

Result<std::vector<NodeRecord>> SqliteStore::GetNodes(const std::string& run_id) {
  MutexLock lock(&read_mu_);
  return reader_->GetNodes(run_id);
}

Result<std::vector<EventRecord>> SqliteStore::GetEvents(const std::string& run_id) {
  MutexLock lock(&read_mu_);
  return reader_->GetEvents(run_id);
}

Result<std::vector<RunListing>> SqliteStore::ListRuns(const RunFilter& filter) {
  MutexLock lock(&read_mu_);
  return reader_->ListRuns(filter);
}

Result<std::vector<ScriptVersion>> SqliteStore::GetScriptVersions(const std::string& run_id) {
  MutexLock lock(&read_mu_);
  return reader_->GetScriptVersions(run_id);
}

Status SqliteStore::SendSignal(const std::string& run_id, const std::string& name,
                               const std::string& data_json, double now) {
  return CallOnWriter([&](sqlite::SqliteWriter* writer) {
    return writer->SendSignal(run_id, name, data_json, now);
  });
}

Result<std::optional<std::string>> SqliteStore::TakeSignal(const std::string& run_id,
                                                           const std::string& name,
                                                           const std::string& node, double now) {
  {
    MutexLock lock(&read_mu_);
    auto present = reader_->HasSignal(run_id, name, node);
    if (!present.ok()) return present.status();
    if (!*present) return std::optional<std::string>();
  }
  std::optional<std::string> data;
  Status status = CallOnWriter(
      [&](sqlite::SqliteWriter* writer) {
        auto taken = writer->TakeSignal(run_id, name, node, now);
        if (!taken.ok()) return taken.status();
        data = std::move(taken).value();
        return Status::Ok();
      },
      /*urgent=*/true);
  if (!status.ok()) return status;
  return data;
}

Result<CancelOutcome> SqliteStore::CancelRun(
    const std::string& run_id, double now,
    const std::function<bool(const Owner&, double)>& owner_alive) {
  CancelOutcome outcome = CancelOutcome::kCancelled;
  Status status = CallOnWriter([&](sqlite::SqliteWriter* writer) {
    auto result = writer->CancelRun(run_id, now, owner_alive);
    if (!result.ok()) return result.status();
    outcome = *result;
    return Status::Ok();
  });
  if (!status.ok()) return status;
  return outcome;
}

Result<bool> SqliteStore::CancelRequested(const std::string& run_id) {
  MutexLock lock(&read_mu_);
  return reader_->CancelRequested(run_id);
}

}  // namespace keel
