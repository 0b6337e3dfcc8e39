#pragma once
// The SQLite store's schema: recognizing a keel database, and migrating it
// with `PRAGMA user_version` steps.
//
// A keel database carries kApplicationId in `PRAGMA application_id` and its
// schema version in `PRAGMA user_version`. Anything else (not SQLite,
// another program's database, a schema newer than this binary knows) is
// refused without writing a byte to it. Free functions; each works on the
// Connection it is given, which the caller serializes.

#include <cstdint>
#include <span>
#include <string>

#include "store/sqlite/sqlite_util.h"
#include "engine/status.h"

namespace keel::sqlite {

// "keel" in ASCII.
inline constexpr int32_t kApplicationId = 0x6b65656c;

// One schema step: brings user_version from `version - 1` to `version`.
struct Migration {
  int version;
  const char* sql;
};

// keel's schema history, oldest first. Version 1 creates everything.
std::span<const Migration> KeelMigrations();

// What a database looks like, read without writing.
enum class DatabaseKind {
  kNew,   // no tables, no application id: ready to be initialized
  kKeel,  // a keel database at a version this binary can open
};

// Classifies the database on `conn` with read-only statements, all in one
// read transaction (the caller's, when one is open), so that a database
// another connection creates meanwhile is seen whole or not at all. Fails
// with kPermanent ("PATH is not a keel database: ...", "PATH was written by
// a newer keel ...") when it must not be touched; `latest_version` is the
// newest schema version the caller knows.
Result<DatabaseKind> ClassifyDatabase(Connection* conn, int latest_version);

// Classifies the existing file at `path` as ClassifyDatabase does, without
// modifying it or leaving any file behind: when no write-ahead log exists,
// the file is opened as immutable, so not even -wal/-shm files are created.
// Such a read takes no locks, so it is repeated when the file changed while
// it was read (another process creating or checkpointing it), for up to
// `busy_timeout` seconds, which also bounds the wait for another writer's
// lock.
Result<DatabaseKind> InspectFile(const std::string& path, int latest_version, double busy_timeout);

// Brings the database on `conn` to the last version of `migrations` in one
// BEGIN IMMEDIATE transaction, classifying it again inside the transaction
// so that concurrent openers cannot both initialize it. A database already
// at that version is left as it is. On failure nothing is changed.
Status Migrate(Connection* conn, std::span<const Migration> migrations, int busy_retries);

// `path` as an SQLite URI ("file:..."), percent-encoding what URIs give
// meaning to; query parameters such as "?mode=ro" may be appended.
std::string FileUri(const std::string& path);

// The value of an integer pragma such as "user_version" or "application_id".
Result<int64_t> ReadPragma(Connection* conn, const char* name);

}  // namespace keel::sqlite
