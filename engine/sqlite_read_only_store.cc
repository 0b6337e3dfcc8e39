#include "engine/sqlite_read_only_store.h"

#include <sqlite3.h>
#include <unistd.h>

#include "engine/sqlite_reader.h"
#include "engine/sqlite_schema.h"
#include "engine/sqlite_util.h"

namespace keel {
namespace {

// The schema versions that added runs.epoch and breakers.probes_json
// (engine/sqlite_schema.cc).
constexpr int kEpochVersion = 3;
constexpr int kProbeLeaseVersion = 4;
constexpr int kIdleVersion = 5;  // runs.idle_s

}  // namespace

Result<std::unique_ptr<SqliteReadOnlyStore>> SqliteReadOnlyStore::Open(const std::string& path,
                                                                       double busy_timeout) {
  int latest = sqlite::KeelMigrations().back().version;
  auto kind = sqlite::InspectFile(path, latest, busy_timeout);
  if (!kind.ok()) return kind.status();
  if (*kind != sqlite::DatabaseKind::kKeel) {
    return Status::Error(ErrorKind::kPermanent, "no keel database at " + path);
  }
  bool has_wal = access((path + "-wal").c_str(), F_OK) == 0;
  std::string uri = sqlite::FileUri(path) + (has_wal ? "?mode=ro" : "?mode=ro&immutable=1");
  auto conn =
      sqlite::Connection::Open(uri, path, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, busy_timeout);
  if (!conn.ok()) return conn.status();
  // A database of an older schema cannot be migrated read-only: a temporary
  // view, which shadows the table, supplies what the reader expects.
  auto version = sqlite::ReadPragma(conn->get(), "user_version");
  if (!version.ok()) return version.status();
  if (*version < kIdleVersion) {
    const char* view = *version < kEpochVersion
                           ? "CREATE TEMP VIEW runs AS SELECT *, 1 AS epoch, 0 AS idle_s FROM main.runs"
                           : "CREATE TEMP VIEW runs AS SELECT *, 0 AS idle_s FROM main.runs";
    Status status = (*conn)->Exec(view, "reading an older schema");
    if (!status.ok()) return status;
  }
  if (*version < kProbeLeaseVersion) {
    Status status = (*conn)->Exec(
        "CREATE TEMP VIEW breakers AS SELECT *, '[]' AS probes_json FROM main.breakers",
        "reading an older schema");
    if (!status.ok()) return status;
  }
  auto reader = sqlite::SqliteReader::Create(std::move(conn).value());
  if (!reader.ok()) return reader.status();
  return std::unique_ptr<SqliteReadOnlyStore>(
      new SqliteReadOnlyStore(path, std::move(reader).value()));
}

SqliteReadOnlyStore::SqliteReadOnlyStore(std::string path,
                                         std::unique_ptr<sqlite::SqliteReader> reader)
    : path_(std::move(path)), reader_(std::move(reader)) {}

SqliteReadOnlyStore::~SqliteReadOnlyStore() = default;

Status SqliteReadOnlyStore::ReadOnly() const {
  return Status::Error(ErrorKind::kPermanent, path_ + " is open read-only");
}

Status SqliteReadOnlyStore::CreateRun(const RunRecord&) { return ReadOnly(); }

Result<ClaimedRun> SqliteReadOnlyStore::ClaimRun(
    const RunRecord&, int64_t, const std::function<bool(const Owner&, double)>&) {
  return ReadOnly();
}

Status SqliteReadOnlyStore::WriteHealth() { return Status::Ok(); }

void SqliteReadOnlyStore::SaveNode(NodeRecord) {
  MutexLock lock(&mu_);
  dropped_write_ = true;
}

void SqliteReadOnlyStore::FinishNode(NodeRecord, EventRecord) {
  MutexLock lock(&mu_);
  dropped_write_ = true;
}

void SqliteReadOnlyStore::AppendEvent(EventRecord) {
  MutexLock lock(&mu_);
  dropped_write_ = true;
}

void SqliteReadOnlyStore::FinishRun(std::string, RunStatus, std::string, double) {
  MutexLock lock(&mu_);
  dropped_write_ = true;
}

void SqliteReadOnlyStore::Heartbeat(std::string, double) {
  MutexLock lock(&mu_);
  dropped_write_ = true;
}

Status SqliteReadOnlyStore::Flush() {
  MutexLock lock(&mu_);
  if (!dropped_write_) return Status::Ok();
  dropped_write_ = false;
  return ReadOnly();
}

Result<RunRecord> SqliteReadOnlyStore::GetRun(const std::string& id) {
  MutexLock lock(&mu_);
  return reader_->GetRun(id);
}

Result<std::vector<NodeRecord>> SqliteReadOnlyStore::GetNodes(const std::string& run_id) {
  MutexLock lock(&mu_);
  return reader_->GetNodes(run_id);
}

Result<std::vector<EventRecord>> SqliteReadOnlyStore::GetEvents(const std::string& run_id) {
  MutexLock lock(&mu_);
  return reader_->GetEvents(run_id);
}

Result<std::vector<RunListing>> SqliteReadOnlyStore::ListRuns(const RunFilter& filter) {
  MutexLock lock(&mu_);
  return reader_->ListRuns(filter);
}

Result<int64_t> SqliteReadOnlyStore::DeleteFinishedBefore(double) { return ReadOnly(); }

Result<BreakerSnapshot> SqliteReadOnlyStore::UpdateBreaker(
    const std::string&, const std::function<void(BreakerSnapshot&)>&) {
  return ReadOnly();
}

Result<std::vector<BreakerRow>> SqliteReadOnlyStore::ListBreakers() {
  MutexLock lock(&mu_);
  return reader_->ListBreakers();
}

Result<int64_t> SqliteReadOnlyStore::ResetBreakers(const std::string&) { return ReadOnly(); }

}  // namespace keel
