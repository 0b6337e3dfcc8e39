#pragma once
// The PostgreSQL store's schema: its tables, and the migrations that bring
// a database to the version this binary writes.
//
// Free functions; each takes the connection it is given (one thread at a time).

#include <cstdint>

#include "engine/status.h"
#include "store/postgres/pg_connection.h"

namespace keel::pg {

// The schema version this binary reads and writes.
int LatestSchemaVersion();

// Creates the tables of a new database, or applies the steps an older one
// lacks, in one transaction under an advisory lock, so processes starting
// at once migrate it once. Fails (kPermanent, naming the database) when its
// schema is newer than this binary's, or when it holds tables named like
// keel's without keel's version table (another program's database).
Status Migrate(Connection& conn);

// The version of the database's schema; 0 when keel never wrote to it.
Result<int64_t> SchemaVersion(Connection& conn);

}  // namespace keel::pg
