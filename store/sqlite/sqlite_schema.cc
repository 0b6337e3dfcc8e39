#include "store/sqlite/sqlite_schema.h"

#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

namespace keel::sqlite {
namespace {

Status NotKeel(const std::string& path, const std::string& why) {
  return Status::Error(ErrorKind::kPermanent, path + " is not a keel database: " + why);
}

// The schema version of the database on `conn`: 0 for a new one.
Result<int64_t> SchemaVersion(Connection* conn, int latest) {
  auto kind = ClassifyDatabase(conn, latest);
  if (!kind.ok()) return kind.status();
  if (*kind == DatabaseKind::kNew) return int64_t{0};
  return ReadPragma(conn, "user_version");
}

// Inside a write transaction: applies the steps the database lacks, reading
// its version again now that no other connection can change it.
Status ApplyMissing(Connection* conn, std::span<const Migration> migrations, int latest) {
  auto version = SchemaVersion(conn, latest);
  if (!version.ok()) return version.status();
  if (*version == latest) return Status::Ok();
  for (const Migration& m : migrations) {
    if (m.version <= *version) continue;
    Status status =
        conn->Exec(m.sql, "migrating the schema to version " + std::to_string(m.version));
    if (!status.ok()) return status;
  }
  std::string stamp = "PRAGMA application_id = " + std::to_string(kApplicationId) +
                      "; PRAGMA user_version = " + std::to_string(latest);
  return conn->Exec(stamp.c_str(), "stamping the schema version");
}

// How long InspectFile waits before looking again at a file that changed
// while it read it.
constexpr auto kRecheckPause = std::chrono::milliseconds(2);

std::chrono::steady_clock::duration Seconds(double seconds) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(seconds));
}

// What tells whether a file was written between two looks at it.
struct FileStamp {
  bool has_wal = false;
  ino_t inode = 0;
  off_t size = -1;
  int64_t changed_ns = 0;  // ctime: moves on every write

  bool operator==(const FileStamp&) const = default;
};

FileStamp StampOf(const std::string& path) {
  FileStamp stamp;
  stamp.has_wal = access((path + "-wal").c_str(), F_OK) == 0;
  struct stat st;
  if (stat(path.c_str(), &st) == 0) {
    stamp.inode = st.st_ino;
    stamp.size = st.st_size;
    stamp.changed_ns = int64_t{st.st_ctim.tv_sec} * 1000000000 + st.st_ctim.tv_nsec;
  }
  return stamp;
}

// ClassifyDatabase's reads, inside a transaction the caller holds.
Result<DatabaseKind> ClassifySnapshot(Connection* conn, int latest_version) {
  const std::string& path = conn->path();
  auto app_id = ReadPragma(conn, "application_id");
  if (!app_id.ok()) {
    if ((sqlite3_errcode(conn->get()) & 0xff) == SQLITE_NOTADB) {
      return NotKeel(path, "file is not a database");
    }
    return app_id.status();
  }
  auto version = ReadPragma(conn, "user_version");
  if (!version.ok()) return version.status();
  if (*app_id == kApplicationId) {
    if (*version > latest_version) {
      return Status::Error(ErrorKind::kPermanent,
                           path + " was written by a newer keel (schema version " +
                               std::to_string(*version) + ", this keel knows up to " +
                               std::to_string(latest_version) + "); upgrade keel to use it");
    }
    return DatabaseKind::kKeel;
  }
  if (*app_id != 0) {
    char hex[16];
    std::snprintf(hex, sizeof hex, "0x%08x", static_cast<uint32_t>(*app_id));
    return NotKeel(path, std::string("it belongs to another program (application_id ") + hex + ")");
  }
  Statement objects;
  Status status = objects.Prepare(conn,
                                  "SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite\\_%' "
                                  "ESCAPE '\\' ORDER BY name LIMIT 4");
  if (!status.ok()) return status;
  std::vector<std::string> names;
  while (objects.Step(&status, "listing tables")) names.push_back(objects.Text(0));
  objects.Reset();
  if (!status.ok()) return status;
  if (!names.empty()) {
    std::string list;
    for (size_t i = 0; i < names.size() && i < 3; ++i) list += (i ? ", " : "") + names[i];
    if (names.size() > 3) list += ", ...";
    return NotKeel(path, "it holds another program's tables (" + list + ")");
  }
  if (*version != 0) {
    return NotKeel(
        path, "it has user_version " + std::to_string(*version) + " but not keel's application_id");
  }
  return DatabaseKind::kNew;
}

}  // namespace

// `path` as an SQLite URI, percent-encoding what URIs give meaning to.
std::string FileUri(const std::string& path) {
  std::string uri = path.starts_with('/') ? "file://" : "file:";
  for (char c : path) {
    if (c == '%' || c == '?' || c == '#' || static_cast<unsigned char>(c) < 0x20) {
      char escaped[4];
      std::snprintf(escaped, sizeof escaped, "%%%02X", static_cast<unsigned char>(c));
      uri += escaped;
    } else {
      uri += c;
    }
  }
  return uri;
}


Result<int64_t> ReadPragma(Connection* conn, const char* name) {
  std::string sql = std::string("PRAGMA ") + name;
  Statement stmt;
  Status status = stmt.Prepare(conn, sql.c_str());
  if (status.ok() && stmt.Step(&status, sql)) {
    int64_t value = stmt.Int(0);
    stmt.Reset();
    return value;
  }
  if (status.ok()) status = Status::Error(ErrorKind::kPermanent, conn->path() + ": no " + sql);
  return status;
}

Result<DatabaseKind> ClassifyDatabase(Connection* conn, int latest_version) {
  // A creator commits keel's tables and its stamp in one transaction, so one
  // snapshot shows both or neither. Separate reads could see the tables of a
  // database created in between without its stamp, and refuse it as foreign.
  if (!sqlite3_get_autocommit(conn->get())) return ClassifySnapshot(conn, latest_version);
  Status status = conn->Exec("BEGIN", "starting a read");
  if (!status.ok()) return status;
  auto kind = ClassifySnapshot(conn, latest_version);
  conn->Rollback();  // it only read
  return kind;
}

Result<DatabaseKind> InspectFile(const std::string& path, int latest_version, double busy_timeout) {
  const auto deadline = std::chrono::steady_clock::now() + Seconds(busy_timeout);
  for (;;) {
    // With a write-ahead log present the main file may be stale, so read
    // through the log, under SQLite's locks; that needs the -shm file, which
    // then already exists.
    const FileStamp before = StampOf(path);
    std::string uri = FileUri(path) + (before.has_wal ? "?mode=ro" : "?mode=ro&immutable=1");
    auto conn = Connection::Open(uri, path, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, busy_timeout);
    if (!conn.ok()) return conn.status();
    auto kind = ClassifyDatabase(conn->get(), latest_version);
    conn->reset();
    // An immutable read takes no locks: trust it only if nobody wrote the
    // file meanwhile (another process creating or checkpointing it).
    if (before.has_wal || StampOf(path) == before || std::chrono::steady_clock::now() >= deadline) {
      return kind;
    }
    std::this_thread::sleep_for(kRecheckPause);
  }
}

Status Migrate(Connection* conn, std::span<const Migration> migrations, int busy_retries) {
  const int latest = migrations.empty() ? 0 : migrations.back().version;
  // Numbers only increase; a number may be skipped while the step that
  // takes it is developed elsewhere.
  for (size_t i = 0; i < migrations.size(); ++i) {
    if (migrations[i].version <= (i == 0 ? 0 : migrations[i - 1].version)) {
      return Status::Error(ErrorKind::kPermanent, "schema migrations are not in increasing order");
    }
  }
  // Most opens find the schema current: settle that without the write lock,
  // so that opening a database another process is writing does not wait.
  auto version = SchemaVersion(conn, latest);
  if (!version.ok()) return version.status();
  if (*version == latest) return Status::Ok();

  Status status = conn->BeginImmediate(busy_retries);
  if (!status.ok()) return status;
  status = ApplyMissing(conn, migrations, latest);
  if (status.ok()) status = conn->Exec("COMMIT", "committing the schema");
  if (!status.ok()) conn->Rollback();
  return status;
}

}  // namespace keel::sqlite
