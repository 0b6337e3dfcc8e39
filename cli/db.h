#pragma once
// Where the checkpoint database is and how the commands open it: --db, else
// $KEEL_DB, else ./keel.db.
// Free functions; safe from any thread.

#include <memory>
#include <optional>
#include <string>

#include "engine/status.h"
#include "engine/store.h"
#include "views/run_status.h"

namespace keel::cli {

// The database path the user asked for: `flag` when not empty, else $KEEL_DB
// when set and not empty, else "keel.db".
std::string ResolveDbPath(const std::string& flag);

struct DbOpenOptions {
  bool create = false;                // create the file if missing (run only)
  std::string durability = "normal";  // "normal" or "full"
  // Seconds checkpoint writes may keep failing before the store gives up
  // (SqliteStoreOptions::stall_timeout).
  double storage_timeout = 30;
};

// Opens the store at `path` for reading and writing. Fails (kPermanent, with
// a message naming the file) when the file is missing and `create` is false,
// when this process may not write it or its directory, when it is not a keel
// database, or when SQLite cannot open it; a file that is not a keel
// database is never written to.
Result<std::unique_ptr<Store>> OpenDb(const std::string& path, const DbOpenOptions& options);

enum class DbAccess {
  kRead,   // the command only reads: a database it may not write is opened read-only
  kWrite,  // the command writes: a database it may not write is an error
};

// Opens the existing store at `path`, creating no file. Ok with a null store
// when there is no keel database there yet: the file is missing, empty, or
// another process has created it and not yet initialized it; listings report
// that as "nothing recorded" rather than as an error. Fails as OpenDb does
// otherwise.
Result<std::unique_ptr<Store>> OpenDbIfExists(const std::string& path,
                                              DbAccess access = DbAccess::kRead);

// After a resume: "run ID in all: 1.2s active, 2m05s elapsed" on stderr,
// as `keel runs` shows them; nothing when the run cannot be read or has no
// duration (it was interrupted again).
void PrintRunTimes(Store* store, const std::string& run_id);

}  // namespace keel::cli
