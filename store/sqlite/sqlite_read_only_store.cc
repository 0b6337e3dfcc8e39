#include "store/sqlite/sqlite_read_only_store.h"

#include <sqlite3.h>
#include <unistd.h>

#include "store/sqlite/sqlite_reader.h"
#include "store/sqlite/sqlite_schema.h"
#include "store/sqlite/sqlite_util.h"

namespace keel {
namespace {

// The schema versions that added runs.epoch and breakers.probes_json
// (store/sqlite/sqlite_schema.cc).
constexpr int kEpochVersion = 3;
constexpr int kProbeLeaseVersion = 4;
constexpr int kIdleVersion = 5;  // runs.idle_s
// The version that recorded runs' configuration and script versions.
constexpr int kVersionsVersion = 6;
// Breakers keep their configuration, then their statistics.
constexpr int kBreakerConfigVersion = 12;
constexpr int kBreakerStatsVersion = 15;

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
  if (*version < kVersionsVersion) {
    std::string runs = "CREATE TEMP VIEW runs AS SELECT *, ";
    if (*version < kEpochVersion) runs += "1 AS epoch, ";
    if (*version < kIdleVersion) runs += "0 AS idle_s, ";
    runs +=
        "'{}' AS config_json, '' AS forked_from, '' AS forked_from_node, 1 AS script_version "
        "FROM main.runs;"
        "CREATE TEMP VIEW nodes AS SELECT rowid AS rowid, *, 1 AS script_version FROM main.nodes;"
        "CREATE TEMP TABLE script_versions (run_id, version, created_at, script_path, "
        "script_sha256, script_text);"
        "CREATE TEMP TABLE script_modules (run_id, version, seq, name, path, sha256, text);";
    Status status = (*conn)->Exec(runs.c_str(), "reading an older schema");
    if (!status.ok()) return status;
  }
  if (*version < kBreakerStatsVersion) {
    std::string breakers = "CREATE TEMP VIEW breakers AS SELECT *, ";
    if (*version < kProbeLeaseVersion) breakers += "'[]' AS probes_json, ";
    if (*version < kBreakerConfigVersion) breakers += "'{}' AS config_json, ";
    breakers += "'{}' AS stats_json FROM main.breakers";
    Status status = (*conn)->Exec(breakers.c_str(), "reading an older schema");
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

Status SqliteReadOnlyStore::CreateForkedRun(const RunRecord&, const std::vector<NodeRecord>&) {
  return ReadOnly();
}

Result<ClaimedRun> SqliteReadOnlyStore::ClaimRunForRerun(
    const RunRecord&, int64_t, const std::string&, const std::vector<std::string>&,
    const std::function<bool(const Owner&, double)>&) {
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

Result<std::vector<ScriptVersion>> SqliteReadOnlyStore::GetScriptVersions(
    const std::string& run_id) {
  MutexLock lock(&mu_);
  return reader_->GetScriptVersions(run_id);
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

Status SqliteReadOnlyStore::SendSignal(const std::string&, const std::string&, const std::string&,
                                       double) {
  return ReadOnly();
}

Result<std::optional<std::string>> SqliteReadOnlyStore::TakeSignal(const std::string&,
                                                                   const std::string&,
                                                                   const std::string&, double) {
  return ReadOnly();
}

Result<CancelOutcome> SqliteReadOnlyStore::CancelRun(
    const std::string&, double, const std::function<bool(const Owner&, double)>&) {
  return ReadOnly();
}

Result<bool> SqliteReadOnlyStore::CancelRequested(const std::string& run_id) {
  MutexLock lock(&mu_);
  return reader_->CancelRequested(run_id);
}

}  // namespace keel
