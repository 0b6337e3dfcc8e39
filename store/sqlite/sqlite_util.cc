#include "store/sqlite/sqlite_util.h"

#include <sqlite3.h>

#include <cmath>

namespace keel::sqlite {

Status Error(sqlite3* db, int rc, const std::string& path, std::string_view what) {
  std::string message = path;
  message += ": ";
  message += what;
  message += ": ";
  message += db != nullptr && sqlite3_errcode(db) == rc ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  ErrorKind kind = IsBusy(rc) ? ErrorKind::kTransient : ErrorKind::kPermanent;
  return Status::Error(kind, std::move(message));
}

bool IsBusy(int rc) {
  int primary = rc & 0xff;
  return primary == SQLITE_BUSY || primary == SQLITE_LOCKED;
}

Result<std::unique_ptr<Connection>> Connection::Open(const std::string& target,
                                                     const std::string& path, int flags,
                                                     double busy_timeout,
                                                     const std::string& vfs) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(target.c_str(), &db, flags | SQLITE_OPEN_NOMUTEX,
                           vfs.empty() ? nullptr : vfs.c_str());
  if (rc != SQLITE_OK) {
    Status status = Error(db, rc, path, "cannot open");
    sqlite3_close_v2(db);
    return status;
  }
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, static_cast<int>(std::lround(busy_timeout * 1000)));
  return std::unique_ptr<Connection>(new Connection(db, path));
}

Connection::~Connection() { sqlite3_close_v2(db_); }

Status Connection::Exec(const char* sql, std::string_view what) {
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
  return rc == SQLITE_OK ? Status::Ok() : Error(db_, rc, path_, what);
}

Status Connection::BeginImmediate(int busy_retries) {
  for (int attempt = 0;; ++attempt) {
    int rc = sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
    if (rc == SQLITE_OK) return Status::Ok();
    if (!IsBusy(rc) || attempt >= busy_retries) {
      return Error(db_, rc, path_, "cannot start a write transaction");
    }
  }
}

void Connection::Rollback() {
  if (!sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
}

Statement::~Statement() { sqlite3_finalize(stmt_); }

Status Statement::Prepare(Connection* conn, const char* sql) {
  conn_ = conn;
  sqlite3_finalize(stmt_);
  stmt_ = nullptr;
  sql_ = sql;
  error_ = Status::Ok();
  return Status::Ok();
}

bool Statement::Compile() {
  if (stmt_ != nullptr) return true;
  // Tried again after a failure: a busy schema lock is worth another try.
  if (conn_ == nullptr) return false;
  int rc = sqlite3_prepare_v3(conn_->get(), sql_.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &stmt_,
                              nullptr);
  if (rc == SQLITE_OK) return true;
  error_ = Error(conn_->get(), rc, conn_->path(), "cannot prepare a statement");
  sqlite3_finalize(stmt_);
  stmt_ = nullptr;
  return false;
}

bool Statement::CompileForBind() {
  if (Compile()) return true;
  bind_failed_ = true;
  return false;
}

Statement& Statement::Bind(int index, std::string_view text) {
  if (CompileForBind()) {
    sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()), SQLITE_STATIC);
  }
  return *this;
}

Statement& Statement::Bind(int index, int64_t value) {
  if (CompileForBind()) sqlite3_bind_int64(stmt_, index, value);
  return *this;
}

Statement& Statement::Bind(int index, double value) {
  if (CompileForBind()) sqlite3_bind_double(stmt_, index, value);
  return *this;
}

Statement& Statement::BindNull(int index) {
  if (CompileForBind()) sqlite3_bind_null(stmt_, index);
  return *this;
}

bool Statement::Step(Status* status, std::string_view what) {
  // A parameter that could not be bound must not run as NULL: this use
  // fails, and the next one binds afresh.
  if (bind_failed_ || !Compile()) {
    bind_failed_ = false;
    *status = error_;
    return false;
  }
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc != SQLITE_DONE) *status = Error(conn_->get(), rc, conn_->path(), what);
  return false;
}

Status Statement::Run(std::string_view what) {
  Status status;
  while (Step(&status, what)) {
  }
  Reset();
  return status;
}

void Statement::Reset() {
  if (stmt_ == nullptr) return;
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

std::string Statement::Text(int column) const {
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
  if (text == nullptr) return std::string();
  return std::string(text, static_cast<size_t>(sqlite3_column_bytes(stmt_, column)));
}

int64_t Statement::Int(int column) const { return sqlite3_column_int64(stmt_, column); }

double Statement::Real(int column) const { return sqlite3_column_double(stmt_, column); }

bool Statement::IsNull(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

}  // namespace keel::sqlite
