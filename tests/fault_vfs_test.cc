// FaultVfs on a raw SQLite connection: each planned fault surfaces as the
// SQLite error it stands for, only on the calls and files it names, and
// stops when its count runs out or it is cleared.

#include "tests/support/fault_vfs.h"

#include <doctest/doctest.h>
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include "tests/support/temp_dir.h"

namespace keel::testing {
namespace {

constexpr int kTimeoutS = 30;

// One connection on a FaultVfs, with a busy timeout; closed on destruction.
class Conn {
 public:
  Conn(const std::string& path, const FaultVfs& vfs, int busy_ms = 0) {
    int rc = sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                             vfs.name().c_str());
    if (rc != SQLITE_OK) throw std::runtime_error("cannot open " + path);
    sqlite3_extended_result_codes(db_, 1);
    sqlite3_busy_timeout(db_, busy_ms);
  }
  ~Conn() { sqlite3_close_v2(db_); }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  // The result code of running `sql` (the extended one).
  int Exec(const std::string& sql) {
    int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) message_ = sqlite3_errmsg(db_);
    return rc;
  }
  void Must(const std::string& sql) {
    int rc = Exec(sql);
    INFO(sql << ": " << message_);
    REQUIRE(rc == SQLITE_OK);
  }
  int64_t Int(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    REQUIRE(sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK);
    int64_t value = -1;
    if (sqlite3_step(stmt) == SQLITE_ROW) value = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    return value;
  }
  std::string Text(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    REQUIRE(sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK);
    std::string value;
    if (sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_text(stmt, 0) != nullptr) {
      value = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    }
    sqlite3_finalize(stmt);
    return value;
  }
  // Rolls back when a transaction is still open (SQLite may have done it).
  void RollbackIfOpen() {
    if (!sqlite3_get_autocommit(db_)) Exec("ROLLBACK");
  }
  const std::string& message() const { return message_; }

 private:
  sqlite3* db_ = nullptr;
  std::string message_;
};

// A database in WAL mode (as keel's) with table t(x), on `vfs`.
std::unique_ptr<Conn> WalDb(const TempDir& dir, const FaultVfs& vfs, int busy_ms = 0,
                            const char* synchronous = "NORMAL") {
  auto conn = std::make_unique<Conn>(dir.Path("t.db"), vfs, busy_ms);
  REQUIRE(conn->Int("PRAGMA journal_mode = WAL") != -2);
  conn->Must(std::string("PRAGMA synchronous = ") + synchronous);
  conn->Must("CREATE TABLE IF NOT EXISTS t(x)");
  return conn;
}

// Inserts a row big enough to need pages of its own, in one transaction.
int Insert(Conn& conn, int x) {
  int rc = conn.Exec("INSERT INTO t VALUES (" + std::to_string(x) + "), (randomblob(3000))");
  if (rc != SQLITE_OK) conn.RollbackIfOpen();
  return rc;
}

int64_t Rows(Conn& conn) { return conn.Int("SELECT count(*) FROM t"); }

}  // namespace

TEST_CASE("without a plan every call goes through and is counted" * doctest::timeout(kTimeoutS)) {
  TempDir dir;
  FaultVfs vfs("fault-pass");
  CHECK(sqlite3_vfs_find("fault-pass") != nullptr);
  CHECK(sqlite3_vfs_find(nullptr) != sqlite3_vfs_find("fault-pass"));
  {
    auto conn = WalDb(dir, vfs);
    for (int i = 0; i < 5; ++i) REQUIRE(Insert(*conn, i) == SQLITE_OK);
    CHECK(Rows(*conn) == 10);
  }
  CHECK(vfs.Calls(FaultOp::kWrite) > 0);
  CHECK(vfs.Calls(FaultOp::kWriteLock) >= 5);
  CHECK(vfs.TotalInjected() == 0);
  CHECK_THROWS_AS(FaultVfs("fault-pass"), std::runtime_error);
}

TEST_CASE("the VFS unregisters itself" * doctest::timeout(kTimeoutS)) {
  { FaultVfs vfs("fault-gone"); }
  CHECK(sqlite3_vfs_find("fault-gone") == nullptr);
  FaultVfs again("fault-gone");
  CHECK(sqlite3_vfs_find("fault-gone") != nullptr);
}

TEST_CASE("SQLITE_FULL on the next write fails one commit; the next one succeeds" *
          doctest::timeout(kTimeoutS)) {
  TempDir dir;
  FaultVfs vfs("fault-full-next");
  auto conn = WalDb(dir, vfs);
  REQUIRE(Insert(*conn, 1) == SQLITE_OK);
  vfs.FailNext(FaultOp::kWrite, SQLITE_FULL, 1);
  CHECK(vfs.Armed(FaultOp::kWrite));
  CHECK(Insert(*conn, 2) == SQLITE_FULL);
  CHECK(conn->message() == "database or disk is full");
  CHECK(vfs.Injected(FaultOp::kWrite) == 1);
  CHECK_FALSE(vfs.Armed(FaultOp::kWrite));
  CHECK(Rows(*conn) == 2);
  CHECK(Insert(*conn, 3) == SQLITE_OK);
  CHECK(Rows(*conn) == 4);
  CHECK(vfs.Injected(FaultOp::kWrite) == 1);
}

TEST_CASE("an I/O error on every write lasts until cleared" * doctest::timeout(kTimeoutS)) {
  TempDir dir;
  FaultVfs vfs("fault-ioerr");
  auto conn = WalDb(dir, vfs);
  vfs.FailAlways(FaultOp::kWrite, SQLITE_IOERR_WRITE);
  for (int i = 0; i < 3; ++i) {
    int rc = Insert(*conn, i);
    CHECK(rc == SQLITE_IOERR_WRITE);
    CHECK((rc & 0xFF) == SQLITE_IOERR);
    CHECK(conn->message() == "disk I/O error");
  }
  CHECK(vfs.Injected(FaultOp::kWrite) >= 3);
  CHECK(vfs.Armed(FaultOp::kWrite));
  vfs.Clear(FaultOp::kWrite);
  const int64_t injected = vfs.Injected(FaultOp::kWrite);
  // A WAL write error may leave the connection needing a fresh start of the
  // log; the first commit after it must succeed all the same.
  CHECK(Insert(*conn, 9) == SQLITE_OK);
  CHECK(Rows(*conn) == 2);
  CHECK(vfs.Injected(FaultOp::kWrite) == injected);
}

TEST_CASE("skip S, then fail N: the first S writes go through" * doctest::timeout(kTimeoutS)) {
  TempDir dir;
  FaultVfs vfs("fault-skip");
  auto conn = WalDb(dir, vfs);
  REQUIRE(Insert(*conn, 0) == SQLITE_OK);
  vfs.ResetCounters();
  REQUIRE(Insert(*conn, 1) == SQLITE_OK);
  const int64_t per_commit = vfs.Calls(FaultOp::kWrite);
  REQUIRE(per_commit >= 1);
  // Enough skips for two commits, then one failure.
  vfs.Fail(FaultOp::kWrite, SQLITE_FULL, 1, kAnyFile, static_cast<uint32_t>(2 * per_commit));
  CHECK(Insert(*conn, 2) == SQLITE_OK);
  CHECK(Insert(*conn, 3) == SQLITE_OK);
  CHECK(vfs.Injected(FaultOp::kWrite) == 0);
  CHECK(Insert(*conn, 4) == SQLITE_FULL);
  CHECK(Insert(*conn, 5) == SQLITE_OK);
  CHECK(vfs.Injected(FaultOp::kWrite) == 1);
  CHECK(Rows(*conn) == 10);
}

TEST_CASE("a fault on one kind of file spares the others" * doctest::timeout(kTimeoutS)) {
  TempDir dir;
  FaultVfs vfs("fault-files");
  auto conn = WalDb(dir, vfs);
  REQUIRE(Insert(*conn, 0) == SQLITE_OK);
  // In WAL mode a commit writes only the log; the checkpoint writes the database.
  vfs.FailAlways(FaultOp::kWrite, SQLITE_FULL, kMainDbFile);
  CHECK(Insert(*conn, 1) == SQLITE_OK);
  CHECK(vfs.Injected(FaultOp::kWrite) == 0);
  CHECK(conn->Exec("PRAGMA wal_checkpoint(TRUNCATE)") == SQLITE_FULL);
  CHECK(vfs.Injected(FaultOp::kWrite) > 0);
  vfs.FailAlways(FaultOp::kWrite, SQLITE_FULL, kWalFile);
  CHECK(Insert(*conn, 2) == SQLITE_FULL);
  vfs.ClearAll();
  CHECK(conn->Int("PRAGMA wal_checkpoint(TRUNCATE)") == 0);
  CHECK(Rows(*conn) == 4);
}

TEST_CASE("a failed sync fails the commit that needed it" * doctest::timeout(kTimeoutS)) {
  TempDir dir;
  FaultVfs vfs("fault-sync");
  auto conn = WalDb(dir, vfs, 0, "FULL");  // FULL: every commit syncs the log
  REQUIRE(Insert(*conn, 0) == SQLITE_OK);
  vfs.FailNext(FaultOp::kSync, SQLITE_IOERR_FSYNC, 1, kWalFile);
  CHECK(Insert(*conn, 1) == SQLITE_IOERR_FSYNC);
  CHECK(vfs.Injected(FaultOp::kSync) == 1);
  CHECK(Insert(*conn, 2) == SQLITE_OK);
  CHECK(Rows(*conn) == 4);
}

TEST_CASE("a failed truncate fails a truncating checkpoint" * doctest::timeout(kTimeoutS)) {
  TempDir dir;
  FaultVfs vfs("fault-truncate");
  auto conn = WalDb(dir, vfs);
  REQUIRE(Insert(*conn, 0) == SQLITE_OK);
  vfs.FailAlways(FaultOp::kTruncate, SQLITE_IOERR_TRUNCATE, kWalFile);
  CHECK(conn->Exec("PRAGMA wal_checkpoint(TRUNCATE)") == SQLITE_IOERR_TRUNCATE);
  CHECK(vfs.Injected(FaultOp::kTruncate) >= 1);
  vfs.Clear(FaultOp::kTruncate);
  CHECK(conn->Exec("PRAGMA wal_checkpoint(TRUNCATE)") == SQLITE_OK);
  CHECK(Rows(*conn) == 2);
}

TEST_CASE("SQLITE_BUSY on the write lock: the busy timeout waits, then gives up" *
          doctest::timeout(kTimeoutS)) {
  TempDir dir;
  FaultVfs vfs("fault-busy");
  auto conn = WalDb(dir, vfs, /*busy_ms=*/100);
  REQUIRE(Insert(*conn, 0) == SQLITE_OK);

  vfs.FailAlways(FaultOp::kWriteLock, SQLITE_BUSY);
  auto start = std::chrono::steady_clock::now();
  CHECK(conn->Exec("BEGIN IMMEDIATE") == SQLITE_BUSY);
  double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(waited >= 0.09);
  CHECK(vfs.Injected(FaultOp::kWriteLock) > 1);  // the busy handler asked again
  // Reads need no write lock.
  CHECK(Rows(*conn) == 2);

  // A few refusals within the busy timeout only delay the transaction.
  vfs.FailNext(FaultOp::kWriteLock, SQLITE_BUSY, 2);
  vfs.ResetCounters();
  CHECK(conn->Exec("BEGIN IMMEDIATE") == SQLITE_OK);
  CHECK(vfs.Injected(FaultOp::kWriteLock) == 2);
  conn->Must("INSERT INTO t VALUES (1)");
  conn->Must("COMMIT");
  CHECK(Rows(*conn) == 3);
}

TEST_CASE("SQLITE_BUSY on the write lock in rollback-journal mode" * doctest::timeout(kTimeoutS)) {
  TempDir dir;
  FaultVfs vfs("fault-busy-journal");
  Conn conn(dir.Path("j.db"), vfs, /*busy_ms=*/50);
  conn.Must("PRAGMA journal_mode = DELETE");
  conn.Must("CREATE TABLE t(x)");
  vfs.FailAlways(FaultOp::kWriteLock, SQLITE_BUSY, kMainDbFile);
  CHECK(conn.Exec("INSERT INTO t VALUES (1)") == SQLITE_BUSY);
  CHECK(conn.message() == "database is locked");
  vfs.ClearAll();
  CHECK(conn.Exec("INSERT INTO t VALUES (1)") == SQLITE_OK);
  CHECK(conn.Int("SELECT count(*) FROM t") == 1);
}

TEST_CASE("plans change from another thread while a connection writes" *
          doctest::timeout(kTimeoutS)) {
  TempDir dir;
  FaultVfs vfs("fault-threads");
  auto conn = WalDb(dir, vfs);
  std::atomic<bool> stop{false};
  std::thread toggler([&] {
    for (int i = 0; !stop.load(); ++i) {
      if (i % 2) {
        vfs.FailAlways(FaultOp::kWrite, i % 4 == 1 ? SQLITE_FULL : SQLITE_IOERR_WRITE);
      } else {
        vfs.Clear(FaultOp::kWrite);
      }
      std::this_thread::sleep_for(std::chrono::microseconds(300));
    }
  });
  int ok = 0;
  int failed = 0;
  for (int i = 0; i < 300; ++i) {
    int rc = Insert(*conn, i);
    if (rc == SQLITE_OK) {
      ++ok;
    } else {
      CHECK((rc == SQLITE_FULL || rc == SQLITE_IOERR_WRITE));
      ++failed;
    }
  }
  stop = true;
  toggler.join();
  vfs.ClearAll();
  MESSAGE(ok << " commits, " << failed << " failed");
  CHECK(ok > 0);
  CHECK(Rows(*conn) == 2 * ok);
  CHECK(conn->Text("PRAGMA integrity_check") == "ok");
}

}  // namespace keel::testing
