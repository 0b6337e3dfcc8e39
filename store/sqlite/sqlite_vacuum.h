#pragma once
// ReclaimFreePages: gives the pages of deleted rows back to the file system,
// so that `keel gc` shrinks the database file. A free function on one
// connection; call it from the thread that owns the connection, outside a
// transaction.

#include "store/sqlite/sqlite_util.h"
#include "engine/status.h"

namespace keel::sqlite {

// New databases are created with auto_vacuum = incremental
// (kAutoVacuumPragma, before anything is written), so this runs an
// incremental vacuum, which only moves pages to the end and truncates. A
// database created before that (auto_vacuum = none, which SQLite can change
// only with a full VACUUM) is converted here with one VACUUM: it rewrites
// the whole file once and needs as much free disk as the database takes.
// Then a WAL checkpoint truncates the file. Fails (with nothing lost: the
// space stays free inside the file for later) when another connection
// holds a lock the vacuum needs, or the disk is full.
Status ReclaimFreePages(Connection* conn);

// Run on a connection before it first writes a new database.
inline constexpr char kAutoVacuumPragma[] = "PRAGMA auto_vacuum = INCREMENTAL";

}  // namespace keel::sqlite
