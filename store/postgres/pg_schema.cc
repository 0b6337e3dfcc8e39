#include "store/postgres/pg_schema.h"

#include "store/postgres/pg_leaf_commit_sql.h"
#include "store/postgres/pg_quota.h"

#include <string>

namespace keel::pg {
namespace {

// Statuses, node statuses and error kinds are stored by name (as in the
// SQLite store); times are wall seconds (double precision, which PostgreSQL
// prints in the shortest form that reads back exactly).
//
// Differences from the SQLite schema, which has the same tables:
//  - nodes.ord and signals.id, alert_outbox.id are identity columns: first-
//    insert order and sending order, as SQLite's rowid gives them.
//  - runs.last_seq is the last event seq given for the run: a writer takes
//    seqs by updating it, so processes appending events to one run (the
//    workers of a distributed run) never give one twice.
//  - events.cursor comes from events_cursor, taken while the transaction
//    holds the event-cursor advisory lock (kEventCursorLock) until it
//    commits, so cursors grow in commit order across processes.
constexpr char kSchemaV1[] = R"sql(
CREATE TABLE keel_schema (
  version     integer NOT NULL,
  migrated_at double precision NOT NULL
);

CREATE TABLE runs (
  id               text PRIMARY KEY,
  workflow         text NOT NULL,
  script_path      text NOT NULL,
  script_sha256    text NOT NULL,
  script_text      text NOT NULL,
  params_json      text NOT NULL,
  status           text NOT NULL,
  owner_pid        bigint NOT NULL,
  owner_host       text NOT NULL,
  owner_start      bigint NOT NULL,
  heartbeat        double precision NOT NULL,
  created_at       double precision NOT NULL,
  updated_at       double precision NOT NULL,
  finished_at      double precision NOT NULL DEFAULT 0,
  node_count       integer NOT NULL,
  error            text NOT NULL DEFAULT '',
  epoch            bigint NOT NULL DEFAULT 1,
  idle_s           double precision NOT NULL DEFAULT 0,
  config_json      text NOT NULL DEFAULT '{}',
  forked_from      text NOT NULL DEFAULT '',
  forked_from_node text NOT NULL DEFAULT '',
  script_version   integer NOT NULL DEFAULT 1,
  cancel_requested double precision NOT NULL DEFAULT 0,
  last_seq         bigint NOT NULL DEFAULT 0
);
CREATE INDEX runs_by_created ON runs (created_at);
CREATE INDEX runs_by_status ON runs (status, created_at);
CREATE INDEX runs_by_finished ON runs (finished_at);
CREATE INDEX runs_by_workflow ON runs (workflow, created_at);

CREATE TABLE nodes (
  run_id         text NOT NULL,
  node           text NOT NULL,
  ord            bigint GENERATED ALWAYS AS IDENTITY,
  status         text NOT NULL,
  attempts       integer NOT NULL,
  output_json    text,
  error_kind     text NOT NULL,
  error_message  text NOT NULL,
  started_at     double precision NOT NULL,
  finished_at    double precision NOT NULL,
  script_version integer NOT NULL DEFAULT 1,
  PRIMARY KEY (run_id, node)
);
CREATE INDEX nodes_in_order ON nodes (run_id, ord);
CREATE INDEX nodes_by_status ON nodes (run_id, status, node text_pattern_ops);
CREATE INDEX nodes_by_name ON nodes (run_id, node text_pattern_ops);

CREATE SEQUENCE events_cursor;
CREATE TABLE events (
  cursor    bigint PRIMARY KEY,
  run_id    text NOT NULL,
  seq       bigint NOT NULL,
  ts        double precision NOT NULL,
  node      text NOT NULL,
  kind      text NOT NULL,
  data_json text NOT NULL,
  UNIQUE (run_id, seq)
);
CREATE INDEX events_usage ON events (run_id) WHERE kind IN ('llm_call', 'fallback_event');
CREATE INDEX events_auto_resumed ON events (run_id) WHERE kind = 'auto_resumed';
CREATE INDEX events_auto_resume_limit ON events (run_id) WHERE kind = 'auto_resume_limit';
CREATE INDEX events_by_node ON events (run_id, node, seq);

CREATE TABLE script_versions (
  run_id        text NOT NULL,
  version       integer NOT NULL,
  created_at    double precision NOT NULL,
  script_path   text NOT NULL,
  script_sha256 text NOT NULL,
  script_text   text NOT NULL,
  PRIMARY KEY (run_id, version)
);
CREATE TABLE script_modules (
  run_id  text NOT NULL,
  version integer NOT NULL,
  seq     integer NOT NULL,
  name    text NOT NULL,
  path    text NOT NULL,
  sha256  text NOT NULL,
  text    text NOT NULL,
  PRIMARY KEY (run_id, version, seq)
);

CREATE TABLE breakers (
  key         text PRIMARY KEY,
  state       text NOT NULL DEFAULT 'closed',
  failures    integer NOT NULL DEFAULT 0,
  probes_out  integer NOT NULL DEFAULT 0,
  successes   integer NOT NULL DEFAULT 0,
  opened_at   double precision NOT NULL DEFAULT 0,
  cooldown    double precision NOT NULL DEFAULT 0,
  calls       bigint NOT NULL DEFAULT 0,
  failed      bigint NOT NULL DEFAULT 0,
  window_json text NOT NULL DEFAULT '[]',
  probes_json text NOT NULL DEFAULT '[]',
  config_json text NOT NULL DEFAULT '{}',
  updated_at  double precision NOT NULL DEFAULT 0
);
CREATE INDEX breakers_by_opened ON breakers (opened_at);

CREATE TABLE signals (
  id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  run_id    text NOT NULL,
  name      text NOT NULL,
  data_json text NOT NULL,
  sent_at   double precision NOT NULL,
  taken_by  text,
  taken_at  double precision NOT NULL DEFAULT 0
);
CREATE INDEX signals_by_run ON signals (run_id, name, id);

CREATE TABLE schedule_ticks (
  key         text NOT NULL,
  tick        bigint NOT NULL,
  run_id      text NOT NULL,
  recorded_at double precision NOT NULL,
  PRIMARY KEY (key, tick)
);

CREATE TABLE alert_cursors (
  name     text PRIMARY KEY,
  position double precision NOT NULL
);
CREATE TABLE alert_outbox (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  dedupe_key   text NOT NULL UNIQUE,
  kind         text NOT NULL,
  run_id       text NOT NULL DEFAULT '',
  workflow     text NOT NULL DEFAULT '',
  status       text NOT NULL DEFAULT '',
  error        text NOT NULL DEFAULT '',
  breaker_key  text NOT NULL DEFAULT '',
  at           double precision NOT NULL,
  created_at   double precision NOT NULL,
  attempts     integer NOT NULL DEFAULT 0,
  next_at      double precision NOT NULL,
  lease_owner  text NOT NULL DEFAULT '',
  lease_until  double precision NOT NULL DEFAULT 0,
  delivered_at double precision NOT NULL DEFAULT 0,
  last_error   text NOT NULL DEFAULT ''
);
CREATE INDEX alert_outbox_pending ON alert_outbox (next_at) WHERE delivered_at = 0;

-- Reading JSON that keel wrote, where a damaged value must read as nothing
-- rather than fail the whole query (as SQLite's json_extract of a non-JSON
-- value gives NULL): keel_json is NULL for text that is not JSON,
-- keel_json_number NULL for a field that is not a number.
CREATE FUNCTION keel_json(t text) RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  RETURN t::jsonb;
EXCEPTION WHEN others THEN
  RETURN NULL;
END $$;
CREATE FUNCTION keel_json_number(j jsonb, f text) RETURNS double precision
  LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN jsonb_typeof(j -> f) = 'number' THEN (j ->> f)::double precision END $$;
)sql";

// Version 2: distributed execution (`keel worker`, store/postgres/pg_node_queue.h).
//  - node_queue: one row per node of a distributed run that became ready;
//    claims bump `attempt`, which fences the claim's commit.
//  - workers: one row per worker process, its heartbeat on the database's
//    clock and its lease, after which its claims go back to ready.
//  - claim_log: every claim, commit, discarded commit, re-queue and hand-back
//    with its attempt, so the cluster's invariants can be checked.
constexpr char kSchemaV2[] = R"sql(
CREATE TABLE node_queue (
  run_id     text NOT NULL,
  node       text NOT NULL,
  state      text NOT NULL DEFAULT 'ready',
  attempt    bigint NOT NULL DEFAULT 0,
  worker_id  text NOT NULL DEFAULT '',
  ready_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
  claimed_at timestamptz,
  PRIMARY KEY (run_id, node)
);
CREATE INDEX node_queue_ready ON node_queue (ready_at) WHERE state = 'ready';
CREATE INDEX node_queue_claimed ON node_queue (worker_id) WHERE state = 'claimed';

CREATE TABLE workers (
  id         text PRIMARY KEY,
  host       text NOT NULL,
  pid        bigint NOT NULL,
  start_ticks bigint NOT NULL DEFAULT 0,
  started_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  heartbeat  timestamptz NOT NULL DEFAULT clock_timestamp(),
  lease_s    double precision NOT NULL
);

CREATE TABLE claim_log (
  id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  run_id    text NOT NULL,
  node      text NOT NULL,
  attempt   bigint NOT NULL,
  worker_id text NOT NULL,
  action    text NOT NULL,
  at        timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX claim_log_by_node ON claim_log (run_id, node, id);
)sql";

// Version 4: a worker's commit in one round trip (pg_node_commit.cc).
//  - node_queue_open: the open (not done) queue rows of a run, found without
//    stepping over the done ones: a wide run's commits ask for them.
//  - nodes_inner: the inner records (map items, a call's nodes: names with
//    '[' or '/') by the node they are inside, which a worker reads before
//    running that node, without reading the whole run.
//  - keel_claim_fence: locks run `r`'s row, takes `n` event seqs from it and
//    locks the queue row of node `q`; raises SQLSTATE KL001 (changing
//    nothing) unless the run is running and attempt `a` by worker `w` is the
//    node's current claim. Sent ahead of a commit's writes in the same
//    pipeline, it stops them when the claim was superseded.
constexpr char kSchemaV4[] = R"sql(
CREATE INDEX node_queue_open ON node_queue (run_id) WHERE state <> 'done';
CREATE INDEX nodes_inner ON nodes (run_id, (substring(node from '^[^[/]*')))
  WHERE node ~ '[[/]';
CREATE FUNCTION keel_claim_fence(r text, q text, a bigint, w text, n bigint) RETURNS bigint
  LANGUAGE plpgsql AS $$
DECLARE
  seq bigint;
  current boolean;
BEGIN
  UPDATE runs SET last_seq = last_seq + n WHERE id = r AND status = 'running'
    RETURNING last_seq - n INTO seq;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'run % is not running', r USING ERRCODE = 'KL001';
  END IF;
  SELECT state = 'claimed' AND attempt = a AND worker_id = w INTO current
    FROM node_queue WHERE run_id = r AND node = q FOR UPDATE;
  IF current IS NOT TRUE THEN
    RAISE EXCEPTION 'the claim of node % of run % (attempt %) is no longer current', q, r, a
      USING ERRCODE = 'KL001';
  END IF;
  RETURN seq;
END $$;
)sql";

// Version 7: escalations of distributed runs (store/postgres/pg_escalations.h).
//  - escalations: one row per failed end of a distributed run whose workflow
//    has an `on_failure`, written in the transaction that settles the run
//    failed: the escalation's number, workflow, the run's error and
//    ctx.failure as they were then. A worker claims it (SKIP LOCKED,
//    `attempt` bumped), its lease that of the worker's row; `started_at` is
//    set when escalation_started is recorded (once, by its first claim to
//    start); its records are written with `state` done, fenced by the
//    claim's attempt.
//  - keel_escalation_fence: locks run `r`'s row, takes `n` event seqs from
//    it and locks escalation `e`'s row; raises SQLSTATE KL001 (changing
//    nothing) unless attempt `a` by worker `w` is its current claim. Sent
//    ahead of the writes in the pipeline that holds COMMIT, so a worker
//    paused or cut off mid-write holds no lock past that pipeline.
constexpr char kSchemaV7[] = R"sql(
CREATE TABLE escalations (
  run_id       text NOT NULL,
  number       integer NOT NULL,
  workflow     text NOT NULL,
  error        text NOT NULL,
  failure_json text NOT NULL,
  state        text NOT NULL DEFAULT 'due',
  attempt      bigint NOT NULL DEFAULT 0,
  worker_id    text NOT NULL DEFAULT '',
  due_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
  claimed_at   timestamptz,
  started_at   double precision NOT NULL DEFAULT 0,
  PRIMARY KEY (run_id, number)
);
CREATE INDEX escalations_open ON escalations (due_at) WHERE state <> 'done';
CREATE FUNCTION keel_escalation_fence(r text, e integer, a bigint, w text, n bigint) RETURNS void
  LANGUAGE plpgsql AS $$
DECLARE
  current boolean;
BEGIN
  UPDATE runs SET last_seq = last_seq + n WHERE id = r;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'run % does not exist', r USING ERRCODE = 'KL001';
  END IF;
  SELECT state = 'claimed' AND attempt = a AND worker_id = w INTO current
    FROM escalations WHERE run_id = r AND number = e FOR UPDATE;
  IF current IS NOT TRUE THEN
    RAISE EXCEPTION 'the claim of escalation % of run % (attempt %) is no longer current', e, r, a
      USING ERRCODE = 'KL001';
  END IF;
END $$;
)sql";

// Version 8: wait nodes of distributed runs, woken by workers
// (store/postgres/pg_wait_wakes.h).
//  - runs.distributed: the run was queued node by node (keel submit, keel run
//    on PostgreSQL), set from the run_started event of runs made before.
//  - nodes_waiting: the waiting nodes, which every worker looks over a few
//    times a second.
constexpr char kSchemaV8[] = R"sql(
ALTER TABLE runs ADD COLUMN distributed boolean NOT NULL DEFAULT false;
UPDATE runs SET distributed = true WHERE EXISTS (SELECT 1 FROM events e WHERE e.run_id = runs.id
  AND e.kind = 'run_started' AND e.data_json LIKE '%"distributed":true%');
CREATE INDEX nodes_waiting ON nodes (run_id) WHERE status = 'waiting';
)sql";

// Version 9: waits found through indexes, not by reading every waiting
// record (pg_wait_wakes.h DueWaitRuns); keel_json is IMMUTABLE, so the
// indexes hold what it reads out of output_json.
//  - nodes_wait_due: the waiting nodes by their due time;
//  - nodes_wait_signal: the waiting nodes by run and the signal they wait for;
//  - signals_open: the signals no wait has taken yet;
//  - signals_taken: the taken ones, by run and the node that took them.
// nodes_waiting (version 8) is left to the new ones.
constexpr char kSchemaV9[] = R"sql(
CREATE INDEX nodes_wait_due ON nodes ((keel_json_number(keel_json(output_json), 'due')))
  WHERE status = 'waiting';
CREATE INDEX nodes_wait_signal ON nodes (run_id, (keel_json(output_json) ->> 'signal'))
  WHERE status = 'waiting';
CREATE INDEX signals_open ON signals (run_id, name) WHERE taken_by IS NULL;
CREATE INDEX signals_taken ON signals (run_id, taken_by) WHERE taken_by IS NOT NULL;
DROP INDEX nodes_waiting;
)sql";

struct Migration {
  int version;
  const char* sql;
};

constexpr Migration kMigrations[] = {
    {1, kSchemaV1},
    {2, kSchemaV2},
    // Version 3: shared rate limits, one token bucket row per provider limit.
    {3, kQuotaTableSql},
    {4, kSchemaV4},
    // Version 5: shared concurrency lanes, one row per holder.
    {5, kLaneTableSql},
    // Version 6: what a breaker knows beyond its columns
    // (engine/breaker_codec.h EncodeBreakerStats).
    {6, "ALTER TABLE breakers ADD COLUMN stats_json text NOT NULL DEFAULT '{}'"},
    {7, kSchemaV7},
    {8, kSchemaV8},
    {9, kSchemaV9},
    // Version 10: a leaf node's commit in one statement.
    {10, kLeafCommitSchemaSql},
};

// The advisory lock (pg_advisory_xact_lock key) migrations hold: "keel" in ASCII.
constexpr int64_t kMigrationLock = 0x6b65656c;

}  // namespace

int LatestSchemaVersion() { return kMigrations[std::size(kMigrations) - 1].version; }

Result<int64_t> SchemaVersion(Connection& conn) {
  auto has = conn.Exec("SELECT to_regclass('keel_schema') IS NOT NULL, to_regclass('runs') IS NOT NULL",
                       {}, "reading the schema version");
  if (!has.ok()) return has.status();
  if (!has->boolean(0, 0)) {
    if (has->boolean(0, 1)) {
      return Status::Error(ErrorKind::kPermanent,
                           conn.name() + " is not a keel database: it has a runs table but no "
                                         "keel_schema table");
    }
    return int64_t{0};
  }
  auto version = conn.Exec("SELECT max(version) FROM keel_schema", {}, "reading the schema version");
  if (!version.ok()) return version.status();
  return version->int64(0, 0);
}

Status Migrate(Connection& conn) {
  return conn.Transaction(
      [](Connection& c) -> Status {
        auto lock = c.Exec("SELECT pg_advisory_xact_lock($1)", {std::to_string(kMigrationLock)},
                           "locking the schema for migration");
        if (!lock.ok()) return lock.status();
        auto version = SchemaVersion(c);
        if (!version.ok()) return version.status();
        int latest = LatestSchemaVersion();
        if (*version > latest) {
          return Status::Error(ErrorKind::kPermanent,
                               c.name() + ": the keel schema is version " +
                                   std::to_string(*version) + ", newer than this keel's " +
                                   std::to_string(latest) + "; upgrade keel");
        }
        if (*version == latest) return Status::Ok();
        for (const Migration& m : kMigrations) {
          if (m.version <= *version) continue;
          Status status = c.ExecScript(
              m.sql, "migrating the schema to version " + std::to_string(m.version));
          if (!status.ok()) return status;
        }
        auto stamp = c.Exec(
            "INSERT INTO keel_schema (version, migrated_at) "
            "VALUES ($1, extract(epoch FROM clock_timestamp()))",
            {std::to_string(latest)}, "stamping the schema version");
        return stamp.ok() ? Status::Ok() : stamp.status();
      },
      "migrating the schema");
}

}  // namespace keel::pg
