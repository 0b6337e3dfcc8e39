#pragma once
// Store: where runs, node outcomes and events are checkpointed.
//
// The interface says nothing of SQL so that another backend (a shared
// PostgreSQL with several workers) can slot in without touching the executor.
// All methods are safe to call from any thread. Writes come in two flavours:
//  - synchronous ones (CreateRun, ClaimRun) are durable when they return;
//  - queued ones (SaveNode, AppendEvent, FinishRun, Heartbeat) return at once
//    and are committed in the order they were queued, in batches; Flush()
//    waits for them. Because a node is queued only after its dependencies'
//    records were queued, the durable set of finished nodes is always closed
//    under dependencies.
//
// A queued write that fails is never skipped: the store retries it, holding
// every later write back, until it goes through or the store gives up on
// the storage (WriteHealth). Once it has given up it writes nothing more, so
// what is durable stays a prefix of what was queued.
//
// Claims are fenced: every run carries an epoch, bumped by each process that
// takes the run over (CreateRun starts it at 1, ClaimRun bumps it), and the
// queued writes for a run carry the epoch this store holds for it. A write
// whose epoch is no longer the run's is refused and the store gives up.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "engine/circuit_breaker.h"
#include "engine/quota_source.h"
#include "engine/status.h"
#include "engine/store_records.h"

namespace keel {

class Store {
 public:
  virtual ~Store() = default;

  // Inserts a new run and its script version 1 (the script fields and
  // `run.modules`). Durable on return. Fails if the id exists.
  virtual Status CreateRun(const RunRecord& run) = 0;

  // Takes over run `run.id` for `run.owner` (resume). In one write
  // transaction it reads the run and its nodes, checks that the run is not
  // succeeded, that its epoch is still `expected_epoch` (the one the caller
  // decided on) and that its current owner is dead (`owner_alive(owner,
  // heartbeat_age)` is false), then bumps the
  // epoch and writes the new owner, status running, heartbeat, config_json
  // and the script fields of `run`. When the script or its modules
  // (`run.modules`) differ from the run's latest script version, it adds a
  // new version (ClaimedRun::changed_files says why); nodes saved from then
  // on carry the version the run now runs with. Durable on return; later
  // queued writes for the run carry the new epoch. Fails with kPermanent,
  // writing nothing, when the run does not exist, succeeded, was cancelled
  // (or asked to cancel), was claimed by another process meanwhile, or its
  // owner is alive (the message names
  // pid@host).
  virtual Result<ClaimedRun> ClaimRun(
      const RunRecord& run, int64_t expected_epoch,
      const std::function<bool(const Owner&, double)>& owner_alive) = 0;

  // ClaimRun for `keel resume RUN --from NODE`: the same checks, except that
  // a succeeded run may be taken too. In the same transaction, the records of
  // `rerun` (NODE and every node downstream of it; see engine/rerun.h) go
  // back to pending with their attempt counts kept, the records of their
  // inner nodes (RecordOfAny) are deleted, and a kRerunEventKind event naming
  // them is appended, so that a crash at any point leaves either the run as
  // it was or every one of them to run again. ClaimedRun::nodes is what the
  // transaction left. Fails as ClaimRun does, writing nothing.
  virtual Result<ClaimedRun> ClaimRunForRerun(
      const RunRecord& run, int64_t expected_epoch, const std::string& from,
      const std::vector<std::string>& rerun,
      const std::function<bool(const Owner&, double)>& owner_alive) = 0;

  // CreateRun of a fork (`keel fork`): inserts `run` and `kept` (records of
  // another run, copied with script_version 0) in one transaction, so the
  // run is never seen without them. Fails like CreateRun, writing nothing.
  virtual Status CreateForkedRun(const RunRecord& run, const std::vector<NodeRecord>& kept) = 0;

  // Queued writes, committed in queue order. Errors surface from Flush().
  virtual void SaveNode(NodeRecord node) = 0;  // insert or replace (run_id, node)
  // SaveNode and AppendEvent of the node's finish event (node_succeeded,
  // node_failed, ...) as one write: both are committed, or neither.
  virtual void FinishNode(NodeRecord node, EventRecord event) = 0;
  virtual void AppendEvent(EventRecord event) = 0;
  // FinishRun with kInterrupted or kWaiting records the run stopped but not
  // finished: its finish time stays 0 and DeleteFinishedBefore leaves it.
  virtual void FinishRun(std::string run_id, RunStatus status, std::string error,
                         double finished_at) = 0;
  virtual void Heartbeat(std::string run_id, double now) = 0;

  // Blocks until everything queued before the call is committed and returns
  // ok; or, once the store has given up on its storage (see WriteHealth),
  // returns why. Never returns ok while a record queued before it is missing.
  virtual Status Flush() = 0;

  // Ok while queued writes go through, or have been failing (and retried)
  // for less than the store's stall timeout. Otherwise the store has given
  // up: it returns, from then on, an error naming the cause (disk full, I/O
  // error, database locked by another process, database file deleted or
  // replaced, or the run taken over by another process) and writes nothing
  // more. The error is kPermanent when retrying later cannot help (the run
  // was taken over, the database file is gone), else kTransient. Cheap; any
  // thread.
  virtual Status WriteHealth() = 0;

  // Queued writes not committed yet: lets a producer that can wait (a
  // keel.map creating items) hold back while the store catches up, so the
  // queue does not grow with the run. Cheap; any thread.
  virtual uint64_t Backlog() { return 0; }

  // Reads see only committed data. `id` may be a unique prefix of a run id.
  virtual Result<RunRecord> GetRun(const std::string& id) = 0;
  virtual Result<std::vector<NodeRecord>> GetNodes(const std::string& run_id) = 0;
  virtual Result<std::vector<EventRecord>> GetEvents(const std::string& run_id) = 0;
  virtual Result<std::vector<RunListing>> ListRuns(const RunFilter& filter) = 0;
  // The script versions of run `run_id` (an exact id), oldest first. A run
  // recorded before versions were kept has one, made from its run record.
  virtual Result<std::vector<ScriptVersion>> GetScriptVersions(const std::string& run_id) = 0;

  // Deletes finished (not running, interrupted or waiting) runs whose finished_at is before
  // `wall_time`, with their nodes and events. Returns how many runs went.
  virtual Result<int64_t> DeleteFinishedBefore(double wall_time) = 0;

  // Circuit breakers shared by every run and process using this store.
  // UpdateBreaker reads breaker `key` (a closed, empty snapshot if there is
  // none), calls `update` on it and writes it back, all in one transaction
  // that excludes other writers, so concurrent processes never lose an
  // update or let more than `probes` calls through. Synchronous; it does not
  // wait for queued writes. `update` may run more than once if the
  // transaction has to be retried.
  virtual Result<BreakerSnapshot> UpdateBreaker(
      const std::string& key, const std::function<void(BreakerSnapshot&)>& update) = 0;
  virtual Result<std::vector<BreakerRow>> ListBreakers() = 0;

  // Rate limits shared by every process using this store (a provider's rpm
  // and tpm; engine/quota_source.h). In one transaction that excludes other
  // writers: refills token bucket `key` by the time elapsed since its last
  // take times `rate_per_s`, up to `burst` (a new bucket starts full), takes
  // min(want, tokens) and says how long until the rest of `want` would be
  // there. `now` is wall seconds; a store with a clock of its own (the
  // database's) may use that instead. Synchronous; it does not wait for
  // queued writes. Fails (kPermanent) for a rate or burst not above 0.
  virtual Result<QuotaGrant> TakeQuota(const std::string& key, double want, double rate_per_s,
                                       double burst, double now) {
    return Status::Error(ErrorKind::kPermanent, "shared rate limits: not supported by this store");
  }
  // Concurrency lanes shared the same way (a provider's max_concurrency): in
  // one transaction that excludes other writers, forgets the holders of
  // lane `key` whose lease ran out, and lets `holder` hold
  // SlotsGranted(want, limit, what the others hold) slots until `lease_s`
  // from now (none: its row goes). Returns how many it holds.
  virtual Result<int> HoldSlots(const std::string& key, const std::string& holder, int want,
                                int limit, double lease_s, double now) {
    return Status::Error(ErrorKind::kPermanent,
                         "shared concurrency: not supported by this store");
  }

  // Signals and cancellation (DESIGN.md §8). Each is decided in one write
  // transaction, so `keel signal`, `keel cancel` and a resume's ClaimRun of
  // one run are ordered; synchronous.
  //
  // Stores signal `name` with `data_json` (valid JSON) for run `run_id` (an
  // exact id), kept until a wait takes it. Fails (kPermanent), storing
  // nothing, when the run does not exist or has finished (succeeded, failed,
  // degraded or cancelled).
  virtual Status SendSignal(const std::string& run_id, const std::string& name,
                            const std::string& data_json, double now) = 0;
  // For wait node `node` of run `run_id`, held by this store: the data of the
  // signal `name` the node took before (a crash may have come between), else
  // of the oldest signal `name` not yet taken, which the same transaction
  // marks taken by `node`; nullopt when there is none. So each signal is
  // taken once. Fenced like queued writes: refused (kPermanent) once the run
  // was taken over or cancelled.
  virtual Result<std::optional<std::string>> TakeSignal(const std::string& run_id,
                                                        const std::string& name,
                                                        const std::string& node, double now) = 0;
  // Cancels run `run_id` (an exact id). A run whose owner is alive
  // (`owner_alive` as for ClaimRun) is asked to stop (kRequested: the owner
  // sees CancelRequested, stops its nodes and records the run cancelled); any
  // other unfinished run (waiting, interrupted, or running with a dead owner)
  // is recorded cancelled at once, its epoch bumped (so a resume that read
  // the old one is refused) and its nodes recorded running or waiting
  // recorded cancelled. Fails (kPermanent), writing nothing, when the run
  // does not exist or has finished.
  virtual Result<CancelOutcome> CancelRun(
      const std::string& run_id, double now,
      const std::function<bool(const Owner&, double)>& owner_alive) = 0;
  // Whether `keel cancel` asked the owner of run `run_id` to stop. A cheap read.
  virtual Result<bool> CancelRequested(const std::string& run_id) = 0;
  // Deletes breaker `key`, or every breaker when `key` is empty. Returns how many.
  virtual Result<int64_t> ResetBreakers(const std::string& key) = 0;

  // --- Starting and supervising runs (`keel submit`, `keel serve`) ---
  // A run `keel serve` may start or resume, as ListRunsToStart found it.
  struct StartCandidate {
    RunRecord run;  // script_text left empty
    // Why: "queued", "signal" or "timer" (a waiting run whose signal came or
    // whose timer is due), "interrupted", or "running" (the caller checks
    // whether its owner lives).
    std::string reason;
    int auto_resumes = 0;      // auto_resumed events recorded for the run
    bool limit_noted = false;  // an auto_resume_limit event is recorded
  };
  // Queued runs, oldest first; waiting runs whose signal has arrived (one no
  // wait took) or whose timer is due at `now` (wall seconds); and, when
  // `stopped`, interrupted runs and runs recorded running, stalest first: at
  // most `limit` of each. Indexed reads, cheap enough to poll every second.
  virtual Result<std::vector<StartCandidate>> ListRunsToStart(double now, bool stopped,
                                                              int limit) {
    return Status::Error(ErrorKind::kPermanent, "not supported by this store");
  }
  // Hands run `run_id` over to `to` (a `keel serve` that starts a child
  // `keel resume --handoff-epoch` to claim it), in one write transaction:
  // checks that the run's epoch is still `expected_epoch`, that it was not
  // cancelled (or asked to) and that its owner is dead (`owner_alive` as for
  // ClaimRun), then bumps the epoch, writes `to` as the owner (status
  // unchanged) and appends `event` when its kind is not empty. Returns the
  // new epoch, which only the child given it can claim at (ClaimRun with
  // that epoch and an owner_alive that accepts `to`). Fails (kPermanent),
  // writing nothing, when a check fails: another process decided first.
  virtual Result<int64_t> HandOffRun(const std::string& run_id, int64_t expected_epoch,
                                     const Owner& to, double now, const EventRecord& event,
                                     const std::function<bool(const Owner&, double)>& owner_alive) {
    return Status::Error(ErrorKind::kPermanent, "not supported by this store");
  }
  // Gives back run `run_id` handed off at `epoch` whose child never claimed
  // it: when its epoch is still `epoch`, bumps it and writes `none` (no live
  // process) as the owner; with a non-empty `error`, also records the run
  // failed with it. Fails (kPermanent), writing nothing, when the child (or
  // anyone) claimed or cancelled the run meanwhile.
  virtual Status ReleaseRun(const std::string& run_id, int64_t epoch, const Owner& none,
                            double now, const std::string& error) {
    return Status::Error(ErrorKind::kPermanent, "not supported by this store");
  }
  // Appends `event` (seq assigned) unless run `event.run_id` already has an
  // event of its kind; one transaction, so two callers append it once.
  // Synchronous and unfenced: for notes about runs no process holds.
  virtual Status AppendEventOnce(const EventRecord& event) {
    return Status::Error(ErrorKind::kPermanent, "not supported by this store");
  }
  // --- Alerts outbox (schema version 11; `keel serve --notify`) ---
  // What happened that an operator is told about (a run that finished
  // failed or degraded, a breaker that opened) is copied into an outbox
  // table by ScanAlerts, then claimed, posted and completed by a sender, so
  // an alert outlives a crash between the event and its delivery.
  struct AlertRow {
    int64_t id = 0;
    std::string dedupe_key;  // run:ID:STATUS:eEPOCH or breaker:KEY:OPENED_AT
    std::string kind;        // "run_failed", "run_degraded" or "breaker_open"
    std::string run_id;      // run alerts; "" otherwise
    std::string workflow;
    std::string status;  // the run's status, or the breaker's when scanned
    std::string error;   // why the run failed, as recorded
    std::string breaker_key;
    double at = 0;  // wall seconds: the run's finish or the breaker's opening
    int attempts = 0;  // deliveries tried before this claim
  };
  // In one write transaction: reads the scan cursors (the first scan of a
  // database sets them, and the start of alerting, to `now`, so older
  // history never alerts), inserts one outbox row per run finished failed
  // or degraded and per breaker opened after the cursor less `overlap_s`
  // (seconds; catches writes committed after later ones) but not before the
  // start, skipping rows whose dedupe key exists, and advances the cursors.
  // Returns how many rows it added. Synchronous.
  virtual Result<int64_t> ScanAlerts(double now, double overlap_s) {
    return Status::Error(ErrorKind::kPermanent, "ScanAlerts: not supported by this store");
  }
  // In one write transaction: takes up to `limit` undelivered rows due by
  // `now` whose lease is free or expired, leasing them to `owner` until
  // `now + lease_s`, oldest first. Another caller claims none of them
  // before the lease ends.
  virtual Result<std::vector<AlertRow>> ClaimAlerts(const std::string& owner, double now,
                                                    double lease_s, int limit) {
    return Status::Error(ErrorKind::kPermanent, "ClaimAlerts: not supported by this store");
  }
  // Records the outcome of row `id` if `owner` still holds its lease:
  // delivered at `now`, or failed with `error` and due again at `retry_at`
  // (the lease released, attempts counted). Returns whether it held it.
  virtual Result<bool> CompleteAlert(int64_t id, const std::string& owner, bool delivered,
                                     double now, double retry_at, const std::string& error) {
    return Status::Error(ErrorKind::kPermanent, "CompleteAlert: not supported by this store");
  }
  // --- end of alerts outbox ---

  // --- keel serve: readiness and event pages ---
  //
  // Readiness (/readyz):
  // Ok when the database answers, this process can take a write transaction
  // on it (one that writes nothing) and its schema is the version this
  // binary writes. Otherwise why not, naming the cause: locked by another
  // process (kTransient), read-only, missing, or an older or newer schema
  // (kPermanent). Takes no longer than a second or so; any thread. Stores
  // that cannot tell fail with kPermanent "not supported by this store".
  virtual Status CheckReady() {
    return Status::Error(ErrorKind::kPermanent, "readiness check not supported by this store");
  }

  // --- The global event cursor (schema version 8) -------------------------
  // Every event has a cursor: a position that grows in commit order across
  // every process writing the store and is never reused, even after
  // DeleteFinishedBefore. The live stream and the metrics read what was
  // committed after a cursor instead of rescanning the history.
  struct CursorEvent {
    int64_t cursor = 0;
    EventRecord event;
  };
  // Up to `limit` committed events whose cursor is above `after`, in cursor
  // order; only those of run `run_id` (an exact id) unless it is empty. A
  // cursor below what the store still holds simply reads from the oldest
  // event kept. Fails (kPermanent) on a store without cursors.
  virtual Result<std::vector<CursorEvent>> ReadEventsAfter(int64_t after,
                                                           const std::string& run_id, int limit) {
    return Status::Error(ErrorKind::kPermanent, "event cursors are not supported by this store");
  }
  // The highest cursor ever given to an event (0 before the first), which
  // ReadEventsAfter continues from. Cheap.
  virtual Result<int64_t> LastEventCursor() {
    return Status::Error(ErrorKind::kPermanent, "event cursors are not supported by this store");
  }
  // What the metrics read of the store's present state, not of its events.
  struct StateCounts {
    std::vector<std::pair<std::string, int64_t>> runs;  // (status name, runs), by name
    double oldest_queued_at = 0;  // created_at of the oldest queued run; 0: none
    int64_t signals_pending = 0;  // sent and not taken yet
  };
  virtual Result<StateCounts> CountState() {
    return Status::Error(ErrorKind::kPermanent, "state counts are not supported by this store");
  }

  // ---- Schedules (service/scheduler.h; schema version 10) ----
  // Each tick of a schedule starts one run: the tick and its run are
  // recorded together, so no process records a tick twice.
  //
  // In one write transaction: records tick `tick` (Unix seconds) of schedule
  // `key` as started by run `run.id`, and creates `run` as CreateRun does
  // (the caller sets status kQueued, no owner). Durable on return. Returns
  // kAlreadyRecorded, writing nothing, when the tick was recorded before (by
  // this or another process); kRunIdTaken, writing nothing, when a run
  // `run.id` exists (choose another id and call again).
  enum class TickOutcome { kCreated, kAlreadyRecorded, kRunIdTaken };
  virtual Result<TickOutcome> RecordScheduleTick(const std::string& key, int64_t tick,
                                                 const RunRecord& run) {
    return Status::Error(ErrorKind::kPermanent, "schedules: not supported by this store");
  }
  // The last recorded tick of every schedule that has one.
  struct ScheduleTick {
    std::string key;
    int64_t tick = 0;  // Unix seconds
    std::string run_id;
  };
  virtual Result<std::vector<ScheduleTick>> LastScheduleTicks() {
    return Status::Error(ErrorKind::kPermanent, "schedules: not supported by this store");
  }

  // Up to `limit` events of run `run_id` (an exact id) with seq > `after`,
  // in seq order: one page of GET /api/v1/runs/ID/events, read through the
  // primary key from `after` on. Ok and empty for an unknown run.
  virtual Result<std::vector<EventRecord>> GetEventsAfter(const std::string& run_id,
                                                          int64_t after, int limit) {
    return Status::Error(ErrorKind::kPermanent, "event pages not supported by this store");
  }
  // A number that changes whenever anything was committed to the database,
  // by this process or another, since the last call: lets a reader reuse
  // what it read while the number stays the same. Cheap; any thread.
  virtual Result<int64_t> DataVersion() {
    return Status::Error(ErrorKind::kPermanent, "data versions not supported by this store");
  }
  // --- Dashboard reads (schema version 12: indexes on nodes by status and
  // on events by node) ---
  // The record of node `node` (an exact name: "m[3]", "c/fetch" too) of run
  // `run_id` (an exact id); nullopt when there is none.
  virtual Result<std::optional<NodeRecord>> GetNode(const std::string& run_id,
                                                    const std::string& node) {
    return Status::Error(ErrorKind::kPermanent, "not supported by this store");
  }
  // Up to `limit` (<= 0: all) records of run `run_id` in `status`, in
  // first-insert order; read through an index, not the run's every node.
  virtual Result<std::vector<NodeRecord>> GetNodesInStatus(const std::string& run_id,
                                                           NodeStatus status, int limit) {
    return Status::Error(ErrorKind::kPermanent, "not supported by this store");
  }
  // The last `limit` (<= 0: all) events of node `node` of run `run_id`, in
  // seq order.
  virtual Result<std::vector<EventRecord>> GetNodeEvents(const std::string& run_id,
                                                         const std::string& node, int limit) {
    return Status::Error(ErrorKind::kPermanent, "not supported by this store");
  }
  // One page of the items of map `map` of run `run_id` ("map[0]", "map[1]",
  // ...; not their inner nodes), by index: `total` items match `status`
  // (any when nullopt), and `items` holds those from `offset`, at most
  // `limit`. Sorted and counted in the database.
  struct ItemPage {
    int64_t total = 0;
    std::vector<NodeRecord> items;
  };
  virtual Result<ItemPage> ListMapItems(const std::string& run_id, const std::string& map,
                                        std::optional<NodeStatus> status, int64_t offset,
                                        int limit) {
    return Status::Error(ErrorKind::kPermanent, "not supported by this store");
  }
  // Counts of the items of every map of run `run_id` ("m[3]", "c/m[3]"; not
  // items of maps inside items) by map and status, without reading the
  // items: (map, status, count) rows.
  struct ItemCount {
    std::string map;
    NodeStatus status = NodeStatus::kPending;
    int64_t count = 0;
  };
  virtual Result<std::vector<ItemCount>> CountMapItems(const std::string& run_id) {
    return Status::Error(ErrorKind::kPermanent, "not supported by this store");
  }
  // Run `run_id` without its map items, read in one snapshot: the records
  // of nodes whose names have no '[' (first-insert order), their events
  // and the usage events of items (seq order), and CountMapItems.
  struct RunOutline {
    std::vector<NodeRecord> nodes;
    std::vector<EventRecord> events;
    std::vector<ItemCount> items;
  };
  virtual Result<RunOutline> GetRunOutline(const std::string& run_id) {
    return Status::Error(ErrorKind::kPermanent, "not supported by this store");
  }
};

}  // namespace keel
