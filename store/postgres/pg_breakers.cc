#include "store/postgres/pg_breakers.h"

#include "engine/breaker_codec.h"
#include "store/postgres/pg_rows.h"

namespace keel::pg {
namespace {

// The snapshot's columns, in the order ReadBreaker reads them.
#define KEEL_BREAKER_COLUMNS                                                                  \
  "state, failures, probes_out, successes, opened_at, cooldown, probes_json, calls, failed, " \
  "window_json, config_json, stats_json"

// Creates the row closed when it is missing, else leaves it as it is; either
// way returns it, locked until the transaction ends. A row deleted by a
// concurrent reset is inserted again rather than missed.
constexpr char kLockBreaker[] =
    "INSERT INTO breakers AS b (key) VALUES ($1) "
    "ON CONFLICT (key) DO UPDATE SET key = b.key RETURNING " KEEL_BREAKER_COLUMNS;
constexpr char kWriteBreaker[] =
    "UPDATE breakers SET state = $2, failures = $3, probes_out = $4, successes = $5, "
    "opened_at = $6, cooldown = $7, probes_json = $8, calls = $9, failed = $10, "
    "window_json = $11, config_json = $12, stats_json = $13, updated_at = $14 WHERE key = $1";
constexpr char kListBreakers[] =
    "SELECT key, updated_at, " KEEL_BREAKER_COLUMNS " FROM breakers ORDER BY key COLLATE \"C\"";
constexpr char kResetBreakers[] = "DELETE FROM breakers WHERE $1::text = '' OR key = $1";

#undef KEEL_BREAKER_COLUMNS

// Reads a snapshot from row `i`'s columns `c`, `c` + 1, ... Unknown states
// read as closed; a damaged window or probe list reads as empty.
void ReadBreaker(const Rows& r, int i, int c, BreakerSnapshot* s) {
  s->state = BreakerState::kClosed;
  ParseBreakerState(r.text(i, c), &s->state);
  s->consecutive_failures = static_cast<int>(r.int64(i, c + 1));
  // probes_out (c + 2) repeats the length of the probe list.
  s->probe_successes = static_cast<int>(r.int64(i, c + 3));
  s->opened_at = r.real(i, c + 4);
  s->cooldown = r.real(i, c + 5);
  s->probes = DecodeBreakerProbes(r.str(i, c + 6));
  s->calls = r.int64(i, c + 7);
  s->failed = r.int64(i, c + 8);
  s->recent = DecodeBreakerWindow(r.str(i, c + 9));
  s->config = DecodeBreakerConfig(r.str(i, c + 10));
  DecodeBreakerStats(r.str(i, c + 11), s);
}

}  // namespace

Result<BreakerSnapshot> UpdateBreaker(Connection& conn, const std::string& key,
                                      const std::function<void(BreakerSnapshot&)>& update,
                                      double now) {
  BreakerSnapshot snapshot;
  Status status = conn.Transaction(
      [&](Connection& c) -> Status {
        snapshot = BreakerSnapshot();
        auto row = c.Exec(kLockBreaker, {key}, "reading breaker " + key);
        if (!row.ok()) return row.status();
        ReadBreaker(*row, 0, 0, &snapshot);
        update(snapshot);
        const BreakerSnapshot& s = snapshot;
        auto written = c.Exec(
            kWriteBreaker,
            {key, std::string(BreakerStateName(s.state)), Num(s.consecutive_failures),
             Num(static_cast<int64_t>(s.probes.size())), Num(s.probe_successes), Num(s.opened_at),
             Num(s.cooldown), EncodeBreakerProbes(s.probes), Num(s.calls), Num(s.failed),
             EncodeBreakerWindow(s.recent), EncodeBreakerConfig(s.config), EncodeBreakerStats(s),
             Num(now)},
            "writing breaker " + key);
        return written.ok() ? Status::Ok() : written.status();
      },
      "updating breaker " + key);
  if (!status.ok()) return status;
  return snapshot;
}

Result<std::vector<BreakerRow>> ListBreakers(Connection& conn) {
  return ReadRows<BreakerRow>(conn, kListBreakers, {}, "listing breakers",
                              [](const Rows& r, int i, BreakerRow* b) {
                                b->key = r.str(i, 0);
                                b->updated_at = r.real(i, 1);
                                ReadBreaker(r, i, 2, &b->snapshot);
                              });
}

Result<int64_t> ResetBreakers(Connection& conn, const std::string& key) {
  int64_t deleted = 0;
  Status status = conn.Transaction(
      [&](Connection& c) -> Status {
        auto rows = c.Exec(kResetBreakers, {key}, "resetting breakers");
        if (!rows.ok()) return rows.status();
        deleted = rows->affected();
        return Status::Ok();
      },
      "resetting breakers");
  if (!status.ok()) return status;
  return deleted;
}

}  // namespace keel::pg
