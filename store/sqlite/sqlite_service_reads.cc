// SqliteStore::CheckReady: the readiness probe of `keel serve` (/readyz);
// GetEventsAfter, the pages of GET /api/v1/runs/ID/events; and DataVersion,
// which tells the service when a response it kept is out of date.
// Each call opens a connection of its own with a short busy timeout, so a
// write lock held by another process shows as "locked" within a fraction of
// a second, and a database file deleted or made read-only is seen as it is
// now rather than as the store's long-open connections saw it.

#include <sqlite3.h>
#include <unistd.h>

#include <string>

#include "store/sqlite/sqlite_reader.h"
#include "store/sqlite/sqlite_schema.h"
#include "store/sqlite/sqlite_store.h"
#include "store/sqlite/sqlite_util.h"

namespace keel {
namespace {

// Seconds to wait for another process's write lock before reporting it.
constexpr double kReadyBusyTimeout = 0.2;

Status NotReady(ErrorKind kind, const std::string& path, const std::string& why) {
  return Status::Error(kind, "database " + path + " " + why);
}

}  // namespace

Status SqliteStore::CheckReady() {
  if (access(path_.c_str(), F_OK) != 0) {
    return NotReady(ErrorKind::kPermanent, path_, "is missing");
  }
  auto conn = sqlite::Connection::Open(path_, path_, SQLITE_OPEN_READWRITE, kReadyBusyTimeout);
  if (!conn.ok()) return NotReady(ErrorKind::kPermanent, path_, "cannot be opened");
  sqlite3* db = (*conn)->get();
  if (sqlite3_db_readonly(db, "main") == 1) {
    return NotReady(ErrorKind::kPermanent, path_, "is read-only");
  }
  auto version = sqlite::ReadPragma(conn->get(), "user_version");
  if (!version.ok()) {
    bool busy = version.status().kind() == ErrorKind::kTransient;
    return NotReady(busy ? ErrorKind::kTransient : ErrorKind::kPermanent, path_,
                    busy ? "is locked by another process" : "cannot be read");
  }
  int latest = sqlite::KeelMigrations().back().version;
  if (*version < latest) {
    return NotReady(ErrorKind::kPermanent, path_,
                    "has an older schema (version " + std::to_string(*version) + ", this keel " +
                        "writes " + std::to_string(latest) + ")");
  }
  if (*version > latest) {
    return NotReady(ErrorKind::kPermanent, path_,
                    "has a newer schema (version " + std::to_string(*version) + ", this keel " +
                        "writes " + std::to_string(latest) + ")");
  }
  // A write transaction that writes nothing: takes the write lock and
  // gives it back.
  int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) {
    if (sqlite::IsBusy(rc)) {
      return NotReady(ErrorKind::kTransient, path_, "is locked by another process");
    }
    int primary = rc & 0xff;
    if (primary == SQLITE_READONLY || primary == SQLITE_PERM || primary == SQLITE_CANTOPEN) {
      return NotReady(ErrorKind::kPermanent, path_, "is read-only");
    }
    return NotReady(ErrorKind::kPermanent, path_,
                    std::string("cannot take a write transaction: ") + sqlite3_errstr(rc));
  }
  (*conn)->Rollback();
  return Status::Ok();
}

Result<std::vector<EventRecord>> SqliteStore::GetEventsAfter(const std::string& run_id,
                                                            int64_t after, int limit) {
  MutexLock lock(&read_mu_);
  return reader_->GetEventsAfter(run_id, after, limit);
}

Result<int64_t> SqliteStore::DataVersion() {
  MutexLock lock(&read_mu_);
  return reader_->DataVersion();
}

}  // namespace keel
