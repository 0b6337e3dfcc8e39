#pragma once
// The fault-injecting VFS (tests/support/fault_vfs.h) as the SQLite store
// fault tests use it: one VFS per test program, a guard that clears its
// plans around a case, and a store opened through it with short timeouts.
// Test thread only.

#include <doctest/doctest.h>

#include <memory>
#include <string>

#include "store/sqlite/sqlite_store.h"
#include "tests/support/fault_vfs.h"

namespace keel::testing {

// One VFS for the whole program: SQLite keeps registered VFSes process-wide.
inline FaultVfs& Vfs() {
  static FaultVfs vfs("keel-store-fault");
  return vfs;
}

// Every case starts with no plan and fresh counters, and leaves none behind.
struct CleanVfs {
  CleanVfs() {
    Vfs().ClearAll();
    Vfs().ResetCounters();
  }
  ~CleanVfs() { Vfs().ClearAll(); }
};

inline std::unique_ptr<SqliteStore> OpenFaultStore(const std::string& path,
                                                   double stall_timeout = 5,
                                                   double busy_timeout = 0.05) {
  SqliteStoreOptions options;
  options.vfs = Vfs().name();
  options.stall_timeout = stall_timeout;
  options.busy_timeout = busy_timeout;
  auto store = SqliteStore::Open(path, options);
  REQUIRE_MESSAGE(store.ok(), store.status().ToString());
  return std::move(store).value();
}

}  // namespace keel::testing
