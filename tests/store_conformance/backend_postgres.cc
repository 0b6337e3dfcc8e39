// The conformance suite's PostgreSQL backend: a fresh database per test on
// the tests' throwaway server (tests/support/pg_database.h).

#include "store/postgres/pg_connection.h"
#include "store/postgres/pg_store.h"
#include "tests/store_conformance/conformance.h"
#include "tests/support/pg_database.h"

namespace keel::conformance {
namespace {

// Holds the database's URL; single-threaded like the test that made it.
class PostgresBackend final : public StoreBackend {
 public:
  explicit PostgresBackend(std::string url) : url_(std::move(url)) {}

  std::string name() const override { return "postgres"; }

  std::unique_ptr<Store> Open(const StoreOptions& options) override {
    PostgresStoreOptions pg;
    pg.clock = options.clock;
    pg.stall_timeout = options.stall_timeout;
    auto store = PostgresStore::Open(url_, pg);
    REQUIRE_MESSAGE(store.ok(), store.status().ToString());
    return std::move(store).value();
  }

 private:
  std::string url_;
};

}  // namespace

std::unique_ptr<StoreBackend> NewBackend(const std::string& tag) {
  auto url = keel::test::FreshPgDatabase(tag);
  if (!url) {
    MESSAGE("no PostgreSQL server");
    return nullptr;
  }
  return std::make_unique<PostgresBackend>(*url);
}

}  // namespace keel::conformance
