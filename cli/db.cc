#include "cli/db.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "engine/clock.h"
#include "cli/db_postgres.h"
#include "engine/process_owner.h"
#include "store/sqlite/sqlite_read_only_store.h"
#include "store/sqlite/sqlite_store.h"
#include "views/format.h"

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

// Links followed before giving up, as the kernel's own limit (ELOOP).
constexpr int kMaxLinks = 40;

// Where the database at `path` is once symbolic links are followed: the
// file itself, or for a dangling link the file its last link names (where
// SQLite would create it). SQLite follows links too, so this is the
// directory of the -wal and -shm files.
Result<std::string> RealTarget(const std::string& path) {
  std::string current = path;
  for (int links = 0; links <= kMaxLinks; ++links) {
    struct stat st {};
    if (lstat(current.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) return current;
    std::string target(static_cast<size_t>(st.st_size > 0 ? st.st_size : 4096) + 1, '\0');
    ssize_t n = readlink(current.c_str(), target.data(), target.size());
    if (n < 0) return current;
    target.resize(static_cast<size_t>(n));
    current = target.starts_with('/') ? target : DirectoryOf(current) + "/" + target;
  }
  return Status::Error(
      ErrorKind::kPermanent,
      path + ": too many levels of symbolic links; --db must name a database file");
}

// What the file at `mode` is, when it is not a regular file.
const char* FileTypeName(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a named pipe (FIFO)";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

// Where the database named by `path` really is (see RealTarget), after
// checking that it is a regular file or nothing yet; anything else (a
// directory, a FIFO, a device, a socket) is an error naming `path`, found
// without opening it, so a FIFO cannot make a command hang.
Result<std::string> CheckDbPath(const std::string& path) {
  auto target = RealTarget(path);
  if (!target.ok()) return target.status();
  std::string named = *target == path ? path : path + " (a link to " + *target + ")";
  struct stat st {};
  if (stat(target->c_str(), &st) != 0) {
    if (errno == ENOENT) return target;
    return Status::Error(ErrorKind::kPermanent,
                         "cannot use database " + named + ": " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) {
    return Status::Error(ErrorKind::kPermanent, named + " is " + FileTypeName(st.st_mode) +
                                                    ", not a database file; --db (or $KEEL_DB) "
                                                    "must name a regular file or a new one");
  }
  return target;
}

// Whether this process may write the existing database at `target` (a real
// path, see RealTarget): the file, and its directory for the -wal and -shm
// files.
bool Writable(const std::string& target) {
  return access(target.c_str(), W_OK) == 0 && access(DirectoryOf(target).c_str(), W_OK) == 0;
}

Status ReadOnlyError(const std::string& path, const std::string& target) {
  std::string named = target == path ? path : path + " (a link to " + target + ")";
  return Status::Error(ErrorKind::kPermanent,
                       named +
                           " is read-only: this command writes to the database, and needs "
                           "write access to the file and to its directory " +
                           DirectoryOf(target));
}

// Whether a new database may be created at `target` (a real path, see
// RealTarget): its directory must exist and be writable.
Status CheckCreatable(const std::string& path, const std::string& target) {
  std::string named = target == path ? path : path + " (a link to " + target + ")";
  std::string dir = DirectoryOf(target);
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return Status::Error(ErrorKind::kPermanent,
                         "cannot create database " + named + ": no directory " + dir);
  }
  if (access(dir.c_str(), W_OK) != 0) {
    return Status::Error(ErrorKind::kPermanent,
                         "cannot create database " + named + ": its directory " + dir +
                             " is not writable (" + std::strerror(errno) + ")");
  }
  return Status();
}

}  // namespace

std::string ResolveDbPath(const std::string& flag) {
  if (!flag.empty()) return flag;
  const char* env = std::getenv("KEEL_DB");
  if (env != nullptr && *env != '\0') return env;
  return "keel.db";
}

Result<std::unique_ptr<Store>> OpenDb(const std::string& path, const DbOpenOptions& options) {
  if (IsPostgresDb(path)) return OpenPostgresDb(path, options.create, options.storage_timeout);
  auto target = CheckDbPath(path);
  if (!target.ok()) return target.status();
  std::error_code ec;
  if (std::filesystem::is_regular_file(*target, ec)) {
    if (!Writable(*target)) return ReadOnlyError(path, *target);
  } else if (options.create) {
    Status creatable = CheckCreatable(path, *target);
    if (!creatable.ok()) return creatable;
  }
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
  if (IsPostgresDb(path)) return OpenPostgresDbIfExists(path);
  auto target = CheckDbPath(path);
  if (!target.ok()) return target.status();
  auto exists = SqliteStore::Exists(path, kBusyTimeout);
  if (!exists.ok()) return NamingPath(path, exists.status());
  if (!*exists) return std::unique_ptr<Store>();
  if (access == DbAccess::kRead && !Writable(*target)) {
    auto store = SqliteReadOnlyStore::Open(path, kBusyTimeout);
    if (!store.ok()) return NamingPath(path, store.status());
    return std::unique_ptr<Store>(std::move(store).value());
  }
  return OpenDb(path, {});
}

void PrintRunTimes(Store* store, const std::string& run_id) {
  auto run = store->GetRun(run_id);
  if (!run.ok()) return;
  double now = SystemClock()->WallNow();
  std::string label = RunStatusLabel(*run, now);
  std::optional<double> elapsed = RunSeconds(*run, label, now);
  std::optional<double> active = ActiveSeconds(*run, label, now);
  if (!elapsed || !active) return;
  std::fprintf(stderr, "run %s in all: %s active, %s elapsed\n", run_id.c_str(),
               FormatDuration(*active).c_str(), FormatDuration(*elapsed).c_str());
}

}  // namespace keel::cli
