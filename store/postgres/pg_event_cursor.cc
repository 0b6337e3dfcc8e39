#include "store/postgres/pg_event_cursor.h"

#include "store/postgres/pg_rows.h"

namespace keel::pg {
namespace {

constexpr char kAfter[] =
    "SELECT cursor, run_id, seq, ts, node, kind, data_json FROM events "
    "WHERE cursor > $1 ORDER BY cursor LIMIT $2";
constexpr char kAfterInRun[] =
    "SELECT cursor, run_id, seq, ts, node, kind, data_json FROM events "
    "WHERE run_id = $3 AND cursor > $1 ORDER BY cursor LIMIT $2";
// The sequence keeps the highest cursor ever given, which the next insert
// continues from, so gc deleting the newest events does not lower it.
constexpr char kLast[] = "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM events_cursor";
constexpr char kRunsByStatus[] =
    "SELECT status, count(*), min(created_at) FROM runs GROUP BY status "
    "ORDER BY status COLLATE \"C\"";
constexpr char kSignalsPending[] = "SELECT count(*) FROM signals WHERE taken_by IS NULL";
constexpr char kEventsAfter[] =
    "SELECT run_id, seq, ts, node, kind, data_json FROM events WHERE run_id = $1 AND seq > $2 "
    "ORDER BY seq LIMIT $3";

std::optional<std::string> Limit(int limit) {
  if (limit < 0) return std::nullopt;
  return Num(limit);
}

}  // namespace

Result<std::vector<Store::CursorEvent>> ReadEventsAfter(Connection& conn, int64_t after,
                                                        const std::string& run_id, int limit) {
  Params params{Num(after), Limit(limit)};
  if (!run_id.empty()) params.push_back(run_id);
  return ReadRows<Store::CursorEvent>(conn, run_id.empty() ? kAfter : kAfterInRun, params,
                                      "reading events by cursor",
                                      [](const Rows& r, int i, Store::CursorEvent* e) {
                                        e->cursor = r.int64(i, 0);
                                        EventFromRow(r, i, &e->event, 1);
                                      });
}

Result<int64_t> LastEventCursor(Connection& conn) {
  int64_t last = 0;
  Status status = conn.Transaction(
      [&](Connection& c) -> Status {
        // Shared with every reader, exclusive with writers between their
        // first cursor and their commit: once it is held, every cursor given
        // so far belongs to a transaction that has ended.
        auto locked = c.Exec("SELECT pg_advisory_xact_lock_shared($1)", {Num(kEventCursorLock)},
                             "waiting for event writers");
        if (!locked.ok()) return locked.status();
        auto rows = c.Exec(kLast, {}, "reading the last event cursor");
        if (!rows.ok()) return rows.status();
        last = rows->int64(0, 0);
        return Status::Ok();
      },
      "reading the last event cursor");
  if (!status.ok()) return status;
  return last;
}

Result<Store::StateCounts> CountState(Connection& conn) {
  auto rows = conn.Pipeline({{kRunsByStatus, {}}, {kSignalsPending, {}}}, "counting runs");
  if (!rows.ok()) return rows.status();
  Store::StateCounts counts;
  const Rows& runs = (*rows)[0];
  for (int i = 0; i < runs.size(); ++i) {
    counts.runs.emplace_back(runs.str(i, 0), runs.int64(i, 1));
    if (runs.text(i, 0) == RunStatusName(RunStatus::kQueued))
      counts.oldest_queued_at = runs.real(i, 2);
  }
  counts.signals_pending = (*rows)[1].int64(0, 0);
  return counts;
}

Result<std::vector<EventRecord>> GetEventsAfter(Connection& conn, const std::string& run_id,
                                                int64_t after, int limit) {
  return ReadRows<EventRecord>(conn, kEventsAfter, {run_id, Num(after), Limit(limit)},
                               "reading the events of run " + run_id,
                               [](const Rows& r, int i, EventRecord* e) { EventFromRow(r, i, e); });
}

}  // namespace keel::pg
