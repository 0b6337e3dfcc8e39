#include "store/sqlite/sqlite_schema.h"

namespace keel::sqlite {
namespace {

// Statuses, node statuses and error kinds are stored by name (NodeStatusName,
// RunStatusName, ErrorKindName); times are wall seconds.
constexpr char kSchemaV1[] = R"sql(
CREATE TABLE runs (
  id            TEXT PRIMARY KEY,
  workflow      TEXT NOT NULL,
  script_path   TEXT NOT NULL,
  script_sha256 TEXT NOT NULL,
  script_text   TEXT NOT NULL,
  params_json   TEXT NOT NULL,
  status        TEXT NOT NULL,
  owner_pid     INTEGER NOT NULL,
  owner_host    TEXT NOT NULL,
  owner_start   INTEGER NOT NULL,
  heartbeat     REAL NOT NULL,
  created_at    REAL NOT NULL,
  updated_at    REAL NOT NULL,
  finished_at   REAL NOT NULL DEFAULT 0,
  node_count    INTEGER NOT NULL,
  error         TEXT NOT NULL DEFAULT ''
);
CREATE INDEX runs_by_created ON runs (created_at);
CREATE INDEX runs_by_status ON runs (status, created_at);
CREATE INDEX runs_by_finished ON runs (finished_at);

-- rowid order is first-insert order: GetNodes lists nodes by it.
CREATE TABLE nodes (
  run_id        TEXT NOT NULL,
  node          TEXT NOT NULL,
  status        TEXT NOT NULL,
  attempts      INTEGER NOT NULL,
  output_json   TEXT,
  error_kind    TEXT NOT NULL,
  error_message TEXT NOT NULL,
  started_at    REAL NOT NULL,
  finished_at   REAL NOT NULL,
  PRIMARY KEY (run_id, node)
);

CREATE TABLE events (
  run_id    TEXT NOT NULL,
  seq       INTEGER NOT NULL,
  ts        REAL NOT NULL,
  node      TEXT NOT NULL,
  kind      TEXT NOT NULL,
  data_json TEXT NOT NULL,
  PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;

-- Circuit breakers shared by every run and process using the database: one
-- BreakerSnapshot per key (see engine/circuit_breaker.h).
CREATE TABLE breakers (
  key         TEXT PRIMARY KEY,
  state       TEXT NOT NULL DEFAULT 'closed',
  failures    INTEGER NOT NULL DEFAULT 0,  -- consecutive failures
  probes_out  INTEGER NOT NULL DEFAULT 0,  -- half-open calls not yet reported
  successes   INTEGER NOT NULL DEFAULT 0,  -- successful probes while half-open
  opened_at   REAL NOT NULL DEFAULT 0,
  cooldown    REAL NOT NULL DEFAULT 0,     -- seconds the breaker stays open
  probe_lease REAL NOT NULL DEFAULT 0,
  calls       INTEGER NOT NULL DEFAULT 0,  -- lifetime totals
  failed      INTEGER NOT NULL DEFAULT 0,
  window_json TEXT NOT NULL DEFAULT '[]',  -- recent outcomes: [[time, failed], ...]
  updated_at  REAL NOT NULL DEFAULT 0
);
)sql";

// Version 2: LLM spending is summed per run from the events that carry it
// (see engine/usage.h); this index keeps `keel runs` from scanning the rest.
constexpr const char* kSchemaV2 = R"sql(
CREATE INDEX events_usage ON events (run_id) WHERE kind IN ('llm_call', 'fallback_event');
)sql";

// Version 3: claims are fenced (engine/store.h). Every process that takes a
// run over bumps its epoch in the claim's transaction; writes carrying an
// older epoch are refused.
constexpr const char* kSchemaV3 = R"sql(
ALTER TABLE runs ADD COLUMN epoch INTEGER NOT NULL DEFAULT 1;
)sql";

// Version 4: half-open probes each hold a lease that their process renews
// while they run (ProbeLease in engine/circuit_breaker.h), kept as JSON:
// [{"id", "pid", "host", "start", "started_at", "renewed_at"}, ...].
// probe_lease (one expiry for every probe) is no longer read or written.
constexpr const char* kSchemaV4 = R"sql(
ALTER TABLE breakers ADD COLUMN probes_json TEXT NOT NULL DEFAULT '[]';
)sql";

// Version 5: the time a run spent stopped before each resume, summed, so
// that its active time (elapsed less idle) needs no scan of its events.
// ClaimRun adds the gap between the previous process's last sign of life
// (heartbeat, stop, finish, or a node's start or finish) and the claim.
// Runs recorded before it read 0.
constexpr const char* kSchemaV5 = R"sql(
ALTER TABLE runs ADD COLUMN idle_s REAL NOT NULL DEFAULT 0;
)sql";

// Version 6: a run's configuration is recorded with it, and its script is
// versioned. runs.config_json holds what the command line configured beyond
// params (cli/run_config.h); runs.forked_from / forked_from_node name the run
// (and the --from node) a `keel fork` started from; runs.script_version is
// the version the run runs with now, and nodes.script_version the one each
// record was written with (0: copied by a fork). script_versions keeps every
// version of the script, script_modules the modules it required. A run
// recorded before version 6 has no version rows: readers take its run
// record as version 1, and its first claim writes that row before adding
// a new one.
constexpr const char* kSchemaV6 = R"sql(
ALTER TABLE runs ADD COLUMN config_json TEXT NOT NULL DEFAULT '{}';
ALTER TABLE runs ADD COLUMN forked_from TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN forked_from_node TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN script_version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE nodes ADD COLUMN script_version INTEGER NOT NULL DEFAULT 1;
CREATE TABLE script_versions (
  run_id        TEXT NOT NULL,
  version       INTEGER NOT NULL,
  created_at    REAL NOT NULL,
  script_path   TEXT NOT NULL,
  script_sha256 TEXT NOT NULL,
  script_text   TEXT NOT NULL,
  PRIMARY KEY (run_id, version)
);
CREATE TABLE script_modules (
  run_id  TEXT NOT NULL,
  version INTEGER NOT NULL,
  seq     INTEGER NOT NULL,  -- load order
  name    TEXT NOT NULL,
  path    TEXT NOT NULL,
  sha256  TEXT NOT NULL,
  text    TEXT NOT NULL,
  PRIMARY KEY (run_id, version, seq)
);
)sql";

// Version 7: signals and cancellation (DESIGN.md §8). `keel signal` inserts a
// signal; the wait node that takes it sets taken_by (its node name) in the
// same transaction that finds it, so each signal is taken once. `keel cancel`
// of a run whose owner is alive sets cancel_requested (wall seconds); the
// owner polls it and records the run cancelled.
constexpr const char* kSchemaV7 = R"sql(
CREATE TABLE signals (
  id        INTEGER PRIMARY KEY,  -- sending order
  run_id    TEXT NOT NULL,
  name      TEXT NOT NULL,
  data_json TEXT NOT NULL,
  sent_at   REAL NOT NULL,
  taken_by  TEXT,                 -- the wait node that took it; NULL while kept
  taken_at  REAL NOT NULL DEFAULT 0
);
CREATE INDEX signals_by_run ON signals (run_id, name, id);
ALTER TABLE runs ADD COLUMN cancel_requested REAL NOT NULL DEFAULT 0;
)sql";

// Version 9: `keel serve` counts a run's auto-resumes and notes its limit
// once (store/sqlite/sqlite_handoff.cc), reading these small partial indexes
// instead of the run's events.
constexpr const char* kSchemaV9 = R"sql(
CREATE INDEX events_auto_resumed ON events (run_id) WHERE kind = 'auto_resumed';
CREATE INDEX events_auto_resume_limit ON events (run_id) WHERE kind = 'auto_resume_limit';
)sql";

// Version 11: the alerts outbox (`keel serve --notify`). alert_cursors keeps
// how far the scan of runs and breakers has got ('runs', 'breakers', wall
// seconds) and when alerting started ('since'); alert_outbox holds one row per
// alert, unique by dedupe_key, until a sender that leased it (lease_owner,
// lease_until) records it delivered. breakers_by_opened lets the scan read
// only breakers opened since its cursor.
constexpr const char* kSchemaV11 = R"sql(
CREATE TABLE alert_cursors (
  name     TEXT PRIMARY KEY,
  position REAL NOT NULL
);
CREATE TABLE alert_outbox (
  id           INTEGER PRIMARY KEY,
  dedupe_key   TEXT NOT NULL UNIQUE,
  kind         TEXT NOT NULL,
  run_id       TEXT NOT NULL DEFAULT '',
  workflow     TEXT NOT NULL DEFAULT '',
  status       TEXT NOT NULL DEFAULT '',
  error        TEXT NOT NULL DEFAULT '',
  breaker_key  TEXT NOT NULL DEFAULT '',
  at           REAL NOT NULL,
  created_at   REAL NOT NULL,
  attempts     INTEGER NOT NULL DEFAULT 0,
  next_at      REAL NOT NULL,
  lease_owner  TEXT NOT NULL DEFAULT '',
  lease_until  REAL NOT NULL DEFAULT 0,
  delivered_at REAL NOT NULL DEFAULT 0,
  last_error   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX alert_outbox_pending ON alert_outbox (next_at) WHERE delivered_at = 0;
CREATE INDEX breakers_by_opened ON breakers (opened_at);
)sql";

// Version 8: a global event cursor (Store::ReadEventsAfter). events becomes a
// rowid table whose `cursor` is an AUTOINCREMENT key: SQLite commits one
// writer at a time, so cursors grow in commit order across processes, and
// AUTOINCREMENT never hands out a cursor again after gc deleted it. The
// (run_id, seq) key becomes a unique index. Events recorded before version 8
// are copied run by run in their (run_id, seq) order, which needs no sort,
// so a database of a million events migrates in seconds; each run's events
// keep their order.
constexpr const char* kSchemaV8 = R"sql(
CREATE TABLE events_v8 (
  run_id    TEXT NOT NULL,
  seq       INTEGER NOT NULL,
  ts        REAL NOT NULL,
  node      TEXT NOT NULL,
  kind      TEXT NOT NULL,
  data_json TEXT NOT NULL,
  cursor    INTEGER PRIMARY KEY AUTOINCREMENT
);
INSERT INTO events_v8 (run_id, seq, ts, node, kind, data_json)
  SELECT run_id, seq, ts, node, kind, data_json FROM events ORDER BY run_id, seq;
DROP TABLE events;
ALTER TABLE events_v8 RENAME TO events;
CREATE UNIQUE INDEX events_by_run ON events (run_id, seq);
CREATE INDEX events_usage ON events (run_id) WHERE kind IN ('llm_call', 'fallback_event');
)sql";

// Version 10: schedule ticks (service/scheduler.h). A tick of schedule `key`
// (a workflow file relative to the service's --workflows directory, '#', and
// the schedule's name or number) is recorded with the run it started, in
// the transaction that creates the run; the primary key keeps a tick from
// being recorded, and so started, twice by any process.
constexpr const char* kSchemaV10 = R"sql(
CREATE TABLE schedule_ticks (
  key         TEXT NOT NULL,
  tick        INTEGER NOT NULL,  -- Unix seconds
  run_id      TEXT NOT NULL,
  recorded_at REAL NOT NULL,     -- wall seconds
  PRIMARY KEY (key, tick)
) WITHOUT ROWID;
)sql";

// Version 12: what the dashboard reads of one node without scanning the
// run. events_by_node reads a node's events in seq order; nodes_by_status
// finds a run's running and waiting nodes (its live state) and, with the
// map name a prefix of the item names, counts a map's items by status.
// breakers.config_json keeps the configuration of the breaker's last caller
// (thresholds, window, minimum calls) for `keel breakers`.
constexpr const char* kSchemaV12 = R"sql(
CREATE INDEX events_by_node ON events (run_id, node, seq);
CREATE INDEX nodes_by_status ON nodes (run_id, status, node);
ALTER TABLE breakers ADD COLUMN config_json TEXT NOT NULL DEFAULT '{}';
)sql";

// Version 13: token buckets shared by every process using the database
// (a provider's rpm and tpm; sqlite_quota.cc). `rate` and `burst` are the
// last taker's, for a reader; every take refills with its own.
constexpr const char* kSchemaV13 = R"sql(
CREATE TABLE quotas (
  key        TEXT PRIMARY KEY,
  tokens     REAL NOT NULL,
  updated_at REAL NOT NULL,  -- wall seconds of the last take
  rate       REAL NOT NULL,  -- tokens a second
  burst      REAL NOT NULL
) WITHOUT ROWID;
)sql";

// Version 14: concurrency lanes shared by every process using the database
// (a provider's max_concurrency; sqlite_quota.cc): one row per holder, with
// the slots it holds until its lease runs out (wall seconds).
constexpr const char* kSchemaV14 = R"sql(
CREATE TABLE lanes (
  key        TEXT NOT NULL,
  holder     TEXT NOT NULL,
  held       INTEGER NOT NULL,
  expires_at REAL NOT NULL,
  PRIMARY KEY (key, holder)
) WITHOUT ROWID;
)sql";

// Version 15: breakers.stats_json keeps what a breaker knows beyond its
// columns (engine/breaker_codec.h EncodeBreakerStats): slow calls, timeouts,
// rejections, transitions, the recovery ramp, the learned failure rate.
constexpr const char* kSchemaV15 = R"sql(
ALTER TABLE breakers ADD COLUMN stats_json TEXT NOT NULL DEFAULT '{}';
)sql";

constexpr Migration kMigrations[] = {
    // One step a line (clang-format would pack them).
    {1, kSchemaV1},
    {2, kSchemaV2},
    {3, kSchemaV3},
    {4, kSchemaV4},
    {5, kSchemaV5},
    {6, kSchemaV6},
    {7, kSchemaV7},
    {8, kSchemaV8},
    {9, kSchemaV9},
    {10, kSchemaV10},
    {11, kSchemaV11},
    {12, kSchemaV12},
    {13, kSchemaV13},
    {14, kSchemaV14},
    {15, kSchemaV15},
};

}  // namespace

std::span<const Migration> KeelMigrations() { return kMigrations; }

}  // namespace keel::sqlite
