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

struct RunFilter {
  std::optional<RunStatus> status;
  int limit = 20;  // newest first; <= 0 means all
};

class Store {
 public:
  virtual ~Store() = default;

  // Inserts a new run. Durable on return. Fails if the id exists.
  virtual Status CreateRun(const RunRecord& run) = 0;

  // Takes over an existing run for `run.owner` (resume): in one transaction,
  // checks that the current owner is dead by calling `owner_alive(owner,
  // heartbeat_age)`, then writes the new owner, status running, heartbeat and
  // the script fields of `run`. Durable on return. Fails with kPermanent when
  // the run does not exist or its owner is alive (the message names pid@host).
  virtual Status ClaimRun(const RunRecord& run,
                          const std::function<bool(const Owner&, double)>& owner_alive) = 0;

  // Queued writes, committed in queue order. Errors surface from Flush().
  virtual void SaveNode(NodeRecord node) = 0;  // insert or replace (run_id, node)
  virtual void AppendEvent(EventRecord event) = 0;
  // FinishRun with kInterrupted records the run stopped but not finished:
  // its finish time stays 0 and DeleteFinishedBefore leaves it.
  virtual void FinishRun(std::string run_id, RunStatus status, std::string error,
                         double finished_at) = 0;
  virtual void Heartbeat(std::string run_id, double now) = 0;

  // Blocks until everything queued before the call is committed. Returns the
  // first write error since the previous Flush, or ok.
  virtual Status Flush() = 0;

  // Reads see only committed data. `id` may be a unique prefix of a run id.
  virtual Result<RunRecord> GetRun(const std::string& id) = 0;
  virtual Result<std::vector<NodeRecord>> GetNodes(const std::string& run_id) = 0;
  virtual Result<std::vector<EventRecord>> GetEvents(const std::string& run_id) = 0;
  virtual Result<std::vector<RunListing>> ListRuns(const RunFilter& filter) = 0;

  // Deletes finished (not running or interrupted) runs whose finished_at is before
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
  // Deletes breaker `key`, or every breaker when `key` is empty. Returns how many.
  virtual Result<int64_t> ResetBreakers(const std::string& key) = 0;
};

}  // namespace keel
