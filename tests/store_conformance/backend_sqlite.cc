// The conformance suite's SQLite backend: a fresh database file in a
// scratch directory per test, removed with it.

#include <stdlib.h>

#include <filesystem>
#include <stdexcept>

#include "store/sqlite/sqlite_store.h"
#include "tests/store_conformance/conformance.h"

namespace keel::conformance {
namespace {

// Owns the scratch directory; single-threaded like the test that made it.
class SqliteBackend final : public StoreBackend {
 public:
  SqliteBackend() {
    std::string pattern = "/tmp/keel-conformance-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = pattern;
  }
  ~SqliteBackend() override {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  std::string name() const override { return "sqlite"; }

  std::unique_ptr<Store> Open(const StoreOptions& options) override {
    SqliteStoreOptions sqlite;
    sqlite.clock = options.clock;
    sqlite.stall_timeout = options.stall_timeout;
    auto store = SqliteStore::Open(dir_ + "/keel.db", sqlite);
    REQUIRE_MESSAGE(store.ok(), store.status().ToString());
    return std::move(store).value();
  }

 private:
  std::string dir_;
};

}  // namespace

std::unique_ptr<StoreBackend> NewBackend(const std::string&) {
  return std::make_unique<SqliteBackend>();
}

}  // namespace keel::conformance
