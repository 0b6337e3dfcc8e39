#pragma once
// Helpers for the SQLite store tests: a scratch directory, whole-file reads,
// a raw SQLite connection for looking behind the store's back, sample
// records and a multi-threaded write load.
//
// Not thread-safe: one RawDb per thread. Failures throw std::runtime_error
// or fail the current doctest test.

#include <doctest/doctest.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "engine/process_owner.h"
#include "store/sqlite/sqlite_store.h"
#include "tests/support/store_records.h"

namespace keel::testing {

// The owner record of a child process that has exited and been reaped.
inline Owner DeadOwner() {
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) _exit(0);
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  Owner owner = CurrentOwner();
  owner.pid = child;
  return owner;
}

// A fresh directory under /tmp, removed with its contents on destruction.
class ScratchDir {
 public:
  ScratchDir() {
    std::string pattern = "/tmp/keel-store-test-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  std::string Path(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

inline bool Exists(const std::string& path) { return std::filesystem::exists(path); }

// A plain read-write connection with a generous busy timeout.
class RawDb {
 public:
  explicit RawDb(const std::string& path) : path_(path) {
    if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) {
      throw std::runtime_error("cannot open " + path);
    }
    sqlite3_busy_timeout(db_, 10000);
  }
  ~RawDb() { sqlite3_close(db_); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  void Exec(const std::string& sql) {
    char* error = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
      std::string message = error ? error : "?";
      sqlite3_free(error);
      throw std::runtime_error(path_ + ": " + message + " in: " + sql);
    }
  }

  // The first column of the first row of `sql`, as text ("" when none).
  std::string Text(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
      throw std::runtime_error(path_ + ": " + sqlite3_errmsg(db_) + " in: " + sql);
    }
    std::string value;
    if (sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_text(stmt, 0) != nullptr) {
      value = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    }
    sqlite3_finalize(stmt);
    return value;
  }
  int64_t Int(const std::string& sql) {
    std::string text = Text(sql);
    return text.empty() ? 0 : std::stoll(text);
  }

 private:
  std::string path_;
  sqlite3* db_ = nullptr;
};

// A store on `path` with default options but `busy_timeout`; fails the
// test when it cannot be opened.
inline std::unique_ptr<SqliteStore> OpenStore(const std::string& path, double busy_timeout = 10,
                                              double stall_timeout = 30) {
  SqliteStoreOptions options;
  options.busy_timeout = busy_timeout;
  options.stall_timeout = stall_timeout;
  auto store = SqliteStore::Open(path, options);
  REQUIRE_MESSAGE(store.ok(), store.status().ToString());
  return std::move(store).value();
}

// Sample records: a run owned by a process elsewhere, a node (with an
// output when it succeeded) and an event.
// Writes `count` nodes and events to `run_id` from `threads` threads.
inline void WriteLoad(Store* store, const std::string& run_id, int threads, int count) {
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([=] {
      for (int i = t; i < count; i += threads) {
        store->SaveNode(MakeNode(run_id, std::to_string(i)));
        store->AppendEvent(MakeEvent(run_id, "e"));
      }
    });
  }
  for (auto& w : workers) w.join();
}

}  // namespace keel::testing
