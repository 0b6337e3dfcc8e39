#include "store/sqlite/sqlite_vacuum.h"

#include "store/sqlite/sqlite_schema.h"

namespace keel::sqlite {

namespace {
constexpr int64_t kIncremental = 2;  // PRAGMA auto_vacuum's value for INCREMENTAL
}  // namespace

Status ReclaimFreePages(Connection* conn) {
  auto mode = ReadPragma(conn, "auto_vacuum");
  if (!mode.ok()) return mode.status();
  Status status = *mode == kIncremental
                      ? conn->Exec("PRAGMA incremental_vacuum", "freeing deleted pages")
                      : conn->Exec("PRAGMA auto_vacuum = INCREMENTAL; VACUUM",
                                   "vacuuming the database (once, to turn on incremental vacuum)");
  if (!status.ok()) return status;
  return conn->Exec("PRAGMA wal_checkpoint(TRUNCATE)", "checkpointing after the vacuum");
}

}  // namespace keel::sqlite
