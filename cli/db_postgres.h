#pragma once
// The commands' PostgreSQL databases: --db (or $KEEL_DB) set to a
// postgresql:// or postgres:// URL opens a PostgresStore instead of a file.
// Free functions; safe from any thread.

#include <memory>
#include <string>

#include "engine/status.h"
#include "engine/store.h"

namespace keel::cli {

// Whether `db` (a --db value) names a PostgreSQL database.
bool IsPostgresDb(const std::string& db);

// `db` as messages print it: a URL without its password, or the path.
std::string DbName(const std::string& db);

// Opens the database at `url`, giving it keel's schema when `create`
// (commands that start runs) and failing otherwise when it has none.
// SQLite's --durability does not apply: a commit is as durable as the
// server's synchronous_commit makes it.
Result<std::unique_ptr<Store>> OpenPostgresDb(const std::string& url, bool create,
                                              double storage_timeout);

// As OpenDbIfExists: ok with a null store when the database has no keel
// schema yet ("nothing recorded"); errors name the URL without its password.
Result<std::unique_ptr<Store>> OpenPostgresDbIfExists(const std::string& url);

}  // namespace keel::cli
