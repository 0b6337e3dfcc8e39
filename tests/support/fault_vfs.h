#pragma once
// FaultVfs: a SQLite VFS that wraps the default one and fails chosen calls on
// command, so tests can see what the store does when the disk fills, the
// device errs or another process holds the write lock (after SQLite's
// src/test_vfs.c).
//
// A FaultVfs registers itself under its name (never as the default VFS); a
// connection uses it when opened with that name (sqlite3_open_v2's zVfs, or
// SqliteStoreOptions::vfs). Every call goes through to the default VFS unless
// a fault planned for its operation and file kind says otherwise, in which
// case the call returns the planned SQLite error without touching the file:
//  - kWrite:     xWrite            (SQLITE_FULL, SQLITE_IOERR_WRITE, ...)
//  - kSync:      xSync             (SQLITE_IOERR_FSYNC, ...)
//  - kTruncate:  xTruncate         (SQLITE_IOERR_TRUNCATE, SQLITE_FULL, ...)
//  - kWriteLock: the request for the write lock: in WAL mode xShmLock of
//                WAL_WRITE_LOCK (exclusive lock on shm slot 0), otherwise
//                xLock at RESERVED or above. SQLITE_BUSY here looks to SQLite
//                like another connection holding the lock: its busy handler
//                (busy_timeout) waits and retries.
//
// A plan is "skip the next S matching calls, then fail the next N" (N may be
// kForever: until Clear). Each operation has one plan, kept in one atomic
// word, so plans may be set, replaced and cleared from any thread while
// connections on other threads use the VFS; counters are atomics too.
// Thread-safety: every method is safe from any thread. The FaultVfs must
// outlive every connection opened on it.

#include <sqlite3.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

namespace keel::testing {

// What a file is to SQLite, as a bit in a mask of file kinds.
enum FaultFile : unsigned {
  kMainDbFile = 1,   // the database file itself
  kWalFile = 2,      // the write-ahead log
  kJournalFile = 4,  // a rollback journal (main or statement)
  kOtherFile = 8,    // temp files, the super-journal
  kAnyFile = 15,
};

enum class FaultOp { kWrite = 0, kSync, kTruncate, kWriteLock };
inline constexpr int kFaultOps = 4;

class FaultVfs {
 public:
  // A plan's count that never runs out.
  static constexpr uint32_t kForever = 0xFFFFF;
  // The largest skip or count a plan holds (counts above it are kForever).
  static constexpr uint32_t kMaxCount = kForever - 1;

  // Registers a VFS called `name` over the default VFS. Throws
  // std::runtime_error when there is no default VFS, the name is taken or
  // registration fails.
  explicit FaultVfs(std::string name);
  // Unregisters it. Every connection on it must have been closed.
  ~FaultVfs();

  FaultVfs(const FaultVfs&) = delete;
  FaultVfs& operator=(const FaultVfs&) = delete;

  const std::string& name() const { return name_; }

  // Replaces `op`'s plan: let `skip` matching calls through, then fail
  // `count` (or kForever) of them with `error`. Calls match when their file's
  // kind is in `files`.
  void Fail(FaultOp op, int error, uint32_t count, unsigned files = kAnyFile, uint32_t skip = 0);
  // Fails the next `count` matching calls of `op` with `error`.
  void FailNext(FaultOp op, int error, uint32_t count, unsigned files = kAnyFile) {
    Fail(op, error, count, files);
  }
  // Fails every matching call of `op` with `error` until Clear.
  void FailAlways(FaultOp op, int error, unsigned files = kAnyFile) {
    Fail(op, error, kForever, files);
  }
  // Stops failing `op` (a plan not yet used up is dropped).
  void Clear(FaultOp op);
  void ClearAll();
  // Whether `op` still has faults to inject (or calls to skip first).
  bool Armed(FaultOp op) const;

  // Calls of `op` on any file since construction (or ResetCounters), and
  // how many of them got an injected fault.
  int64_t Calls(FaultOp op) const { return calls_[Index(op)].load(); }
  int64_t Injected(FaultOp op) const { return injected_[Index(op)].load(); }
  int64_t TotalInjected() const;
  void ResetCounters();

  // For the VFS's callbacks: whether this call of `op` on a file of `kind`
  // fails, and with which error (SQLITE_OK: it does not). Counts the call.
  int Decide(FaultOp op, FaultFile kind);

  // The default VFS that this one wraps.
  sqlite3_vfs* real() const { return real_; }

 private:
  static constexpr int Index(FaultOp op) { return static_cast<int>(op); }

  std::string name_;
  sqlite3_vfs* real_ = nullptr;
  sqlite3_vfs vfs_{};
  // Per operation: bits 0-19 count (kForever: no end), 20-39 skip, 40-55 the
  // error code, 56-63 the file mask. 0 means no plan.
  std::array<std::atomic<uint64_t>, kFaultOps> plans_{};
  std::array<std::atomic<int64_t>, kFaultOps> calls_{};
  std::array<std::atomic<int64_t>, kFaultOps> injected_{};
};

}  // namespace keel::testing
