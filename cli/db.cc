#include "cli/db.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "engine/process_owner.h"
#include "engine/sqlite_read_only_store.h"
#include "engine/sqlite_store.h"

namespace keel::cli {
namespace {

// Seconds to wait for another process's lock on the database.
constexpr double kBusyTimeout = 10;

// `status` from the store, naming `path` when it does not already.
Status NamingPath(const std::string& path, const Status& status) {
  if (status.message().find(path) != std::string::npos) return status;
  return Status::Error(status.kind(), path + ": " + status.message());
}

// The directory holding `path`, where SQLite keeps its -wal and -shm files.
std::string DirectoryOf(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  return dir.empty() ? "." : dir;
}

// Whether this process may write the existing database at `path`: the file,
// and its directory for the -wal and -shm files.
bool Writable(const std::string& path) {
  return access(path.c_str(), W_OK) == 0 && access(DirectoryOf(path).c_str(), W_OK) == 0;
}

Status ReadOnlyError(const std::string& path) {
  return Status::Error(ErrorKind::kPermanent,
                       path +
                           " is read-only: this command writes to the database, and needs "
                           "write access to the file and to its directory " +
                           DirectoryOf(path));
}

}  // namespace

std::string ResolveDbPath(const std::string& flag) {
  if (!flag.empty()) return flag;
  const char* env = std::getenv("KEEL_DB");
  if (env != nullptr && *env != '\0') return env;
  return "keel.db";
}

Result<std::unique_ptr<Store>> OpenDb(const std::string& path, const DbOpenOptions& options) {
  std::error_code ec;
  if (std::filesystem::is_regular_file(path, ec) && !Writable(path)) return ReadOnlyError(path);
  SqliteStoreOptions store_options;
  store_options.create_if_missing = options.create;
  store_options.busy_timeout = kBusyTimeout;
  store_options.stall_timeout = options.storage_timeout;
  store_options.durability =
      options.durability == "full" ? SqliteDurability::kFull : SqliteDurability::kNormal;
  auto store = SqliteStore::Open(path, store_options);
  if (!store.ok()) return NamingPath(path, store.status());
  return std::unique_ptr<Store>(std::move(store).value());
}

Result<std::unique_ptr<Store>> OpenDbIfExists(const std::string& path, DbAccess access) {
  auto exists = SqliteStore::Exists(path, kBusyTimeout);
  if (!exists.ok()) return NamingPath(path, exists.status());
  if (!*exists) return std::unique_ptr<Store>();
  if (access == DbAccess::kRead && !Writable(path)) {
    auto store = SqliteReadOnlyStore::Open(path, kBusyTimeout);
    if (!store.ok()) return NamingPath(path, store.status());
    return std::unique_ptr<Store>(std::move(store).value());
  }
  return OpenDb(path, {});
}

std::string RunStatusLabel(const RunRecord& run, double wall_now) {
  if (run.status == RunStatus::kRunning && !OwnerAlive(run.owner, wall_now - run.heartbeat)) {
    return "interrupted";
  }
  return std::string(RunStatusName(run.status));
}

std::optional<double> RunSeconds(const RunRecord& run, const std::string& label, double wall_now) {
  if (run.finished_at > 0) return std::max(0.0, run.finished_at - run.created_at);
  if (label == "running") return std::max(0.0, wall_now - run.created_at);
  return std::nullopt;
}

}  // namespace keel::cli
