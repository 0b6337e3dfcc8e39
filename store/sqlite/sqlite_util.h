#pragma once
// Thin RAII wrappers over the SQLite C API, used by the SQLite store only: a
// Connection owns one sqlite3 handle, a Statement one prepared statement.
//
// Not thread-safe. Connections are opened with SQLITE_OPEN_NOMUTEX, so a
// Connection and its Statements must be used by one thread at a time; the
// owner provides that serialization.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "engine/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace keel::sqlite {

// A Status for SQLite result code `rc` on `db` (which may be null):
// "PATH: WHAT: sqlite's message". Busy and locked are kTransient (worth
// retrying later); everything else is kPermanent.
Status Error(sqlite3* db, int rc, const std::string& path, std::string_view what);

// Whether `rc` (a primary or extended result code) means "another connection
// holds the lock".
bool IsBusy(int rc);

// One open database connection. Closing happens in the destructor; every
// Statement prepared on it must be destroyed first.
class Connection {
 public:
  // Opens `target` with sqlite3_open_v2 `flags` (SQLITE_OPEN_NOMUTEX is
  // added) and a busy timeout of `busy_timeout` seconds, through the
  // registered VFS named `vfs` (empty: the default one). `path` is the file
  // name used in error messages (`target` may be a URI for it). Fails with
  // kPermanent naming `path`.
  static Result<std::unique_ptr<Connection>> Open(const std::string& target,
                                                  const std::string& path, int flags,
                                                  double busy_timeout,
                                                  const std::string& vfs = "");
  ~Connection();

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  sqlite3* get() const { return db_; }
  const std::string& path() const { return path_; }

  // Runs `sql` (one or more statements that return no rows). `what` names
  // the operation in the error message.
  Status Exec(const char* sql, std::string_view what);

  // BEGIN IMMEDIATE: takes the write lock now, so the transaction cannot
  // fail later for want of it. The busy timeout waits for another writer;
  // when it runs out this retries `busy_retries` more times before failing
  // with kTransient.
  Status BeginImmediate(int busy_retries);

  // ROLLBACK, when a transaction is open. Failures are ignored: SQLite has
  // then already rolled back.
  void Rollback();

 private:
  Connection(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}

  sqlite3* db_;
  std::string path_;
};

// A prepared statement, reset after each use so it can be cached.
class Statement {
 public:
  Statement() = default;
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  // Readies `sql` on `conn` for repeated use. It is compiled at its first
  // use (a Bind, Step or Run), so a store that prepares every statement it
  // may need pays only for those it runs; a statement that does not compile
  // fails that Step or Run with kPermanent. Always ok.
  Status Prepare(Connection* conn, const char* sql);

  // Binders take 1-based parameter indexes. Text is bound without a copy:
  // it must stay alive until the statement is reset.
  Statement& Bind(int index, std::string_view text);
  Statement& Bind(int index, int64_t value);
  Statement& Bind(int index, int value) { return Bind(index, int64_t{value}); }
  Statement& Bind(int index, double value);
  Statement& BindNull(int index);

  // One step: true while a row is available, false when done. On an error
  // returns false and sets *status (left alone otherwise).
  bool Step(Status* status, std::string_view what);

  // Steps to the end, then resets. For statements that return no rows.
  Status Run(std::string_view what);

  // Clears the bindings and rewinds, ready for the next use.
  void Reset();

  // Column readers for the current row; columns are 0-based.
  std::string Text(int column) const;
  int64_t Int(int column) const;
  double Real(int column) const;
  bool IsNull(int column) const;

 private:
  // Compiles sql_ unless done; false (error_ set) when it does not compile
  // (kTransient while the schema is locked, so a later use tries again).
  bool Compile();

  // Compile for a Bind; a failure fails the Step that follows.
  bool CompileForBind();

  Connection* conn_ = nullptr;
  std::string sql_;
  sqlite3_stmt* stmt_ = nullptr;
  bool bind_failed_ = false;  // a Bind of this use found no statement
  Status error_;  // why sql_ last failed to compile
};

}  // namespace keel::sqlite
