#include "store/postgres/pg_schedules.h"

#include "store/postgres/pg_rows.h"

namespace keel::pg {
namespace {

constexpr char kRunExists[] = "SELECT 1 FROM runs WHERE id = $1";
constexpr char kInsertTick[] =
    "INSERT INTO schedule_ticks (key, tick, run_id, recorded_at) VALUES ($1, $2, $3, $4) "
    "ON CONFLICT (key, tick) DO NOTHING";
constexpr char kLastTicks[] =
    "SELECT key, tick, run_id FROM (SELECT DISTINCT ON (key) key, tick, run_id "
    "FROM schedule_ticks ORDER BY key, tick DESC) last ORDER BY key COLLATE \"C\"";

}  // namespace

Result<Store::TickOutcome> RecordScheduleTick(Connection& conn, const std::string& key,
                                              int64_t tick, const RunRecord& run) {
  Store::TickOutcome outcome = Store::TickOutcome::kCreated;
  const std::string what = "recording tick " + std::to_string(tick) + " of schedule " + key;
  Status status = conn.Transaction(
      [&](Connection& c) -> Status {
        outcome = Store::TickOutcome::kCreated;
        auto exists = c.Exec(kRunExists, {run.id}, what);
        if (!exists.ok()) return exists.status();
        if (exists->size() > 0) {
          outcome = Store::TickOutcome::kRunIdTaken;
          return Status::Ok();  // nothing written
        }
        auto inserted = c.Exec(kInsertTick, {key, Num(tick), run.id, Num(run.created_at)}, what);
        if (!inserted.ok()) return inserted.status();
        if (inserted->affected() == 0) {
          outcome = Store::TickOutcome::kAlreadyRecorded;
          return Status::Ok();  // nothing written
        }
        Status created = InsertRun(c, run);
        if (created.ok()) return created;
        // Another transaction may have created run `run.id` since the check
        // above; its insert has committed by now (ours waited for it).
        auto again = c.Exec(kRunExists, {run.id}, what);
        if (again.ok() && again->size() > 0) {
          outcome = Store::TickOutcome::kRunIdTaken;  // the rollback drops the tick
        }
        return created;
      },
      what);
  if (outcome == Store::TickOutcome::kRunIdTaken) return outcome;
  if (!status.ok()) return status;
  return outcome;
}

Result<std::vector<Store::ScheduleTick>> LastScheduleTicks(Connection& conn) {
  return ReadRows<Store::ScheduleTick>(conn, kLastTicks, {}, "reading schedule ticks",
                                       [](const Rows& r, int i, Store::ScheduleTick* t) {
                                         t->key = r.str(i, 0);
                                         t->tick = r.int64(i, 1);
                                         t->run_id = r.str(i, 2);
                                       });
}

}  // namespace keel::pg
