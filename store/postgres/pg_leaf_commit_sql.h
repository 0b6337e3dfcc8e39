#pragma once
// PostgreSQL schema version 10 (pg_schema.cc runs it in order): what a leaf
// node's commit needs (pg_node_commit.cc CommitLeaf).

namespace keel::pg {

// Version 10: a leaf node's commit in one statement (pg_node_commit.cc
// CommitLeaf), so it is one transaction, one round trip and one statement
// for the server to run instead of eight.
//  - node_queue_open keyed by run and ready time: a leaf's commit asks
//    whether its run has another open row newest first, where a run's
//    open rows are, instead of walking (run_id alone) or scanning the
//    dead entries and rows its done nodes left, which made a run's
//    commits quadratic;
//  - events_by_kind: the three partial indexes of events by run for some
//    kinds (usage, auto-resumes) in one, so an event insert keeps one;
//  - keel_commit_leaf: the fence of keel_claim_fence, which it replaces
//    (raises KL001, changing nothing, unless run `r` is running and attempt
//    `a` by worker `w` is node `q`'s current claim); marks the claim done
//    and logs `action`; upserts the node records given column by column
//    (one scalar upsert each, so the server keeps one plan for it), taking
//    the run's script version; inserts the events, numbered after the run's
//    last_seq, under advisory lock `lock_key` (the event-cursor lock);
//    returns whether other nodes of the run are still queued or claimed.
inline constexpr char kLeafCommitSchemaSql[] = R"sql(
DROP FUNCTION keel_claim_fence(text, text, bigint, text, bigint);
DROP INDEX node_queue_open;
CREATE INDEX node_queue_open ON node_queue (run_id, ready_at) WHERE state <> 'done';
CREATE INDEX events_by_kind ON events (run_id, kind)
  WHERE kind IN ('llm_call', 'fallback_event', 'auto_resumed', 'auto_resume_limit');
DROP INDEX events_usage;
DROP INDEX events_auto_resumed;
DROP INDEX events_auto_resume_limit;
CREATE FUNCTION keel_commit_leaf(r text, q text, a bigint, w text, action text, lock_key bigint,
    n_node text[], n_status text[], n_attempts integer[], n_output text[], n_error_kind text[],
    n_error_message text[], n_started double precision[], n_finished double precision[],
    e_ts double precision[], e_node text[], e_kind text[], e_data text[]) RETURNS boolean
  LANGUAGE plpgsql AS $$
DECLARE
  taken bigint := coalesce(cardinality(e_kind), 0);
  before bigint;
  version integer;
BEGIN
  UPDATE runs SET last_seq = last_seq + taken WHERE id = r AND status = 'running'
    RETURNING last_seq - taken, script_version INTO before, version;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'run % is not running', r USING ERRCODE = 'KL001';
  END IF;
  WITH d AS (UPDATE node_queue SET state = 'done'
      WHERE run_id = r AND node = q AND state = 'claimed' AND attempt = a AND worker_id = w
      RETURNING node)
    INSERT INTO claim_log (run_id, node, attempt, worker_id, action) SELECT r, q, a, w, action FROM d;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'the claim of node % of run % (attempt %) is no longer current', q, r, a
      USING ERRCODE = 'KL001';
  END IF;
  FOR i IN 1 .. coalesce(cardinality(n_node), 0) LOOP
    INSERT INTO nodes (run_id, node, status, attempts, output_json, error_kind,
        error_message, started_at, finished_at, script_version)
      VALUES (r, n_node[i], n_status[i], n_attempts[i], n_output[i], n_error_kind[i],
        n_error_message[i], n_started[i], n_finished[i], version)
      ON CONFLICT (run_id, node) DO UPDATE SET status = excluded.status,
        attempts = excluded.attempts, output_json = excluded.output_json,
        error_kind = excluded.error_kind, error_message = excluded.error_message,
        started_at = excluded.started_at, finished_at = excluded.finished_at,
        script_version = excluded.script_version;
  END LOOP;
  IF taken > 0 THEN
    PERFORM pg_advisory_xact_lock(lock_key);
    INSERT INTO events (cursor, run_id, seq, ts, node, kind, data_json)
      SELECT nextval('events_cursor'), r, before + e.n, e.ts, e.node, e.kind, e.data
      FROM unnest(e_ts, e_node, e_kind, e_data) WITH ORDINALITY AS e(ts, node, kind, data, n)
      ORDER BY e.n;
  END IF;
  -- A statement of its own, so it sees every commit that went in while
  -- this one waited for the run's row. Newest first: the run's rows that
  -- are done are mostly the oldest, and their dead index entries are not
  -- walked through.
  PERFORM 1 FROM node_queue WHERE run_id = r AND node <> q AND state <> 'done'
    ORDER BY ready_at DESC LIMIT 1;
  RETURN FOUND;
END $$;
)sql";

}  // namespace keel::pg
