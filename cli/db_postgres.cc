// `--db postgresql://...`: the commands' databases in PostgreSQL (see db.h).

#include "cli/db_postgres.h"

#include "store/postgres/pg_connection.h"
#include "store/postgres/pg_store.h"

namespace keel::cli {

bool IsPostgresDb(const std::string& db) { return pg::IsPostgresUrl(db); }

std::string DbName(const std::string& db) {
  return IsPostgresDb(db) ? pg::RedactUrl(db) : db;
}

Result<std::unique_ptr<Store>> OpenPostgresDb(const std::string& url, bool create,
                                              double storage_timeout) {
  PostgresStoreOptions options;
  options.create_schema = create;
  options.stall_timeout = storage_timeout;
  auto store = PostgresStore::Open(url, options);
  if (!store.ok()) return store.status();
  return std::unique_ptr<Store>(std::move(store).value());
}

Result<std::unique_ptr<Store>> OpenPostgresDbIfExists(const std::string& url) {
  auto exists = PostgresStore::Exists(url);
  if (!exists.ok()) return exists.status();
  if (!*exists) return std::unique_ptr<Store>();
  return OpenPostgresDb(url, /*create=*/false, 30);
}

}  // namespace keel::cli
