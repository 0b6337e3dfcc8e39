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
#include "engine/node_status.h"
#include "engine/process_owner.h"
#include "engine/status.h"
#include "engine/usage.h"

namespace keel {

// One Lua module a run's script `require`d while it loaded.
struct ScriptModule {
  std::string name;    // as required: "util", "lib.text"
  std::string path;    // the file it was loaded from, absolute
  std::string sha256;  // hex, of `text`
  std::string text;
};

// One version of a run's script: the script and its modules as a run was
// created, or a resume found them changed. Versions are numbered 1, 2, ...
// per run and never overwritten.
struct ScriptVersion {
  int version = 1;
  double created_at = 0;  // wall seconds
  std::string script_path;
  std::string script_sha256;
  std::string script_text;
  std::vector<ScriptModule> modules;  // in the order they were first required
};

struct RunRecord {
  std::string id;
  std::string workflow;
  std::string script_path;    // absolute path
  std::string script_sha256;  // hex
  std::string script_text;
  std::string params_json = "{}";  // effective params: defaults overridden by -p
  RunStatus status = RunStatus::kRunning;
  Owner owner;
  double heartbeat = 0;    // wall seconds
  double created_at = 0;   // wall seconds
  double updated_at = 0;   // wall seconds
  double finished_at = 0;  // wall seconds; 0 while unfinished
  int node_count = 0;      // nodes in the workflow
  std::string error;       // why it failed, if it did
  int64_t epoch = 1;       // bumped by every claim (see Store::ClaimRun)
  // What the command line configured beyond params (provider overrides,
  // budgets, ...), a JSON object the CLI writes and reads (cli/run_config.h).
  // CreateRun and ClaimRun write it.
  std::string config_json = "{}";
  std::string forked_from;       // the run this one was forked from; "" if none
  std::string forked_from_node;  // the fork's --from node; "" when every node ran
  int script_version = 1;        // the ScriptVersion the run runs (or last ran) with
  // The modules of the script, written by CreateRun and ClaimRun into the
  // run's script version; GetRun leaves it empty (see GetScriptVersions).
  std::vector<ScriptModule> modules;
  // Seconds no process ran it: from each stop (the last heartbeat, the
  // interruption or the finish) to the resume that claimed it, summed.
  double idle_s = 0;
};

struct NodeRecord {
  std::string run_id;
  std::string node;
  NodeStatus status = NodeStatus::kPending;
  int attempts = 0;
  std::optional<std::string> output_json;  // set for succeeded/fallback
  ErrorKind error_kind = ErrorKind::kNone;
  std::string error_message;
  double started_at = 0;   // wall seconds; 0 if it never started
  double finished_at = 0;  // wall seconds; 0 while unfinished
  // The run's script version when the record was written (set by the store);
  // 0 for a record a fork copied from the run it was forked from.
  int script_version = 0;
};

struct EventRecord {
  std::string run_id;
  int64_t seq = 0;         // assigned by the store: 1, 2, ... per run
  double ts = 0;           // wall seconds
  std::string node;        // empty for run-level events
  std::string kind;        // "run_started", "node_started", "node_succeeded", ...
  std::string data_json = "{}";
};

// One row of `keel runs`.
struct RunListing {
  RunRecord run;  // script_text left empty
  int nodes_done = 0;  // nodes recorded succeeded, fallback or skipped
  Usage usage;         // what its LLM calls spent (engine/usage.h)
};

// One row of `keel breakers`.
struct BreakerRow {
  std::string key;
  BreakerSnapshot snapshot;
  double updated_at = 0;  // wall seconds
};

// What Store::ClaimRun read and took, all in one transaction.
struct ClaimedRun {
  RunRecord before;               // the run as it was before the claim
  std::vector<NodeRecord> nodes;  // its node records, in first-insert order
  int64_t epoch = 0;              // the epoch this store now holds for the run
  int script_version = 1;         // the script version the run runs with from now on
  // The files (script path, module paths) that differ from the run's last
  // version: changed, added or no longer required. Empty: none, and no new
  // version was added.
  std::vector<std::string> changed_files;
};

// What Store::CancelRun did.
enum class CancelOutcome {
  kCancelled,  // no live process owned the run: it is recorded cancelled now
  kRequested,  // its owner is alive and was asked to stop; it records the run cancelled
};

struct RunFilter {
  std::optional<RunStatus> status;
  int limit = 20;  // newest first; <= 0 means all
  std::string workflow;  // only runs of this workflow; empty: any
  // An exact run id: only runs listed after it, newest first (the next
  // page); empty: from the newest. A run id that does not exist lists none.
  std::string before;
};

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
  // Up to `limit` events of run `run_id` (an exact id) with seq > `after`,
  // in seq order: one page of GET /api/v1/runs/ID/events, read through the
  // primary key from `after` on. Ok and empty for an unknown run.
  virtual Result<std::vector<EventRecord>> GetEventsAfter(const std::string& run_id,
                                                          int64_t after, int limit) {
    return Status::Error(ErrorKind::kPermanent, "event pages not supported by this store");
  }
};

}  // namespace keel
