// The SQLite store's schedule ticks (schema version 10): the writer's
// transaction behind Store::RecordScheduleTick and the reader's query behind
// Store::LastScheduleTicks. Every statement on schedule_ticks is here.

#include <sqlite3.h>

#include "store/sqlite/sqlite_reader.h"
#include "store/sqlite/sqlite_store.h"
#include "store/sqlite/sqlite_writer.h"

namespace keel {
namespace sqlite {
namespace {

constexpr char kRunExists[] = "SELECT 1 FROM runs WHERE id = ?1";
constexpr char kInsertTick[] =
    "INSERT INTO schedule_ticks (key, tick, run_id, recorded_at) VALUES (?1, ?2, ?3, ?4) "
    "ON CONFLICT (key, tick) DO NOTHING";
// The primary key's order makes this one pass over the index.
constexpr char kLastTicks[] =
    "SELECT key, MAX(tick), run_id FROM schedule_ticks GROUP BY key ORDER BY key";

}  // namespace

Result<Store::TickOutcome> SqliteWriter::RecordScheduleTick(const std::string& key, int64_t tick,
                                                            const RunRecord& run) {
  Store::TickOutcome outcome = Store::TickOutcome::kCreated;
  const std::string what = "recording tick " + std::to_string(tick) + " of schedule " + key;
  Status status = InTransaction([&] {
    Statement exists;
    Status s = exists.Prepare(conn_.get(), kRunExists);
    if (!s.ok()) return s;
    exists.Bind(1, run.id);
    bool taken = exists.Step(&s, what);
    exists.Reset();
    if (!s.ok()) return s;
    if (taken) {
      outcome = Store::TickOutcome::kRunIdTaken;
      return Status::Ok();  // nothing written
    }
    Statement insert;
    s = insert.Prepare(conn_.get(), kInsertTick);
    if (!s.ok()) return s;
    insert.Bind(1, key).Bind(2, tick).Bind(3, run.id).Bind(4, run.created_at);
    s = insert.Run(what);
    if (!s.ok()) return s;
    if (sqlite3_changes(conn_->get()) == 0) {
      outcome = Store::TickOutcome::kAlreadyRecorded;
      return Status::Ok();  // nothing written
    }
    return InsertRun(run, {});
  });
  if (!status.ok()) return status;
  return outcome;
}

Result<std::vector<Store::ScheduleTick>> SqliteReader::LastScheduleTicks() {
  Statement stmt;
  Status status = stmt.Prepare(conn_.get(), kLastTicks);
  if (!status.ok()) return status;
  std::vector<Store::ScheduleTick> ticks;
  while (stmt.Step(&status, "reading schedule ticks")) {
    Store::ScheduleTick& row = ticks.emplace_back();
    row.key = stmt.Text(0);
    row.tick = stmt.Int(1);
    row.run_id = stmt.Text(2);
  }
  stmt.Reset();
  if (!status.ok()) return status;
  return ticks;
}

}  // namespace sqlite

Result<Store::TickOutcome> SqliteStore::RecordScheduleTick(const std::string& key, int64_t tick,
                                                           const RunRecord& run) {
  TickOutcome outcome = TickOutcome::kCreated;
  Status status = CallOnWriter([&](sqlite::SqliteWriter* writer) {
    auto result = writer->RecordScheduleTick(key, tick, run);
    if (!result.ok()) return result.status();
    outcome = *result;
    return Status::Ok();
  });
  if (!status.ok()) return status;
  return outcome;
}

Result<std::vector<Store::ScheduleTick>> SqliteStore::LastScheduleTicks() {
  MutexLock lock(&read_mu_);
  return reader_->LastScheduleTicks();
}

}  // namespace keel
