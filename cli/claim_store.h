#pragma once
// ClaimStore: the Store a worker's Executor writes to while it runs one
// claimed node of a distributed run. It keeps the node's records and
// events in memory until the worker writes them, fenced by the claim
// (store/postgres/pg_node_queue.h: CommitNode at the end, WriteUnderClaim
// for inner records while it runs); nothing reaches the database unless the
// claim is still current then. Circuit breakers and
// signals go to `shared` when one is given (a store every host shares);
// breakers it cannot keep live in `book`, shared by the worker's nodes.
//
// Thread-safety: every method may be called from any thread (the executor's
// workers); the buffers are guarded by one mutex.

#include <map>
#include <string>
#include <vector>

#include "engine/mutex.h"
#include "engine/store.h"

namespace keel::cli {

// Whether `name` is a record inside node `node`: a map item "node[3]" or an
// inner node of a call or loop "node/x", at any depth.
bool InsideNode(const std::string& name, const std::string& node);

// The kinds of a node's own events that a later attempt of the node goes on
// from (engine/run_history.h): its checkpoints (a finished model call, an
// agent's turn), a fallback workflow's events, its spending, the attempts it
// started and the due time its wait fixed. A worker writes them while the
// node runs, so a worker that takes the node over does not pay again for
// calls that finished, counts its attempts on and keeps its wait's due time.
const std::vector<std::string>& HistoryKinds();
bool IsHistoryKind(const std::string& kind);

// Circuit breakers kept by one process for the nodes it runs, so that a
// breaker opened by one node's failures holds for the next. Any thread.
class BreakerBook {
 public:
  BreakerSnapshot Update(const std::string& key,
                         const std::function<void(BreakerSnapshot&)>& update, double now);
  std::vector<BreakerRow> List();

 private:
  Mutex mu_;
  std::map<std::string, BreakerRow> rows_ GUARDED_BY(mu_);
};

class ClaimStore : public Store {
 public:
  // `book` must outlive the store; `shared` may be null.
  explicit ClaimStore(BreakerBook* book, Store* shared = nullptr) : book_(book), shared_(shared) {}

  // Makes WriteHealth fail with `why` (kPermanent): the executor then
  // starts nothing more. Any thread.
  void Fail(const std::string& why);
  // The records and events buffered so far, records collapsed to the last
  // one of each node, in first-write order. Call once the run returned.
  std::vector<NodeRecord> TakeRecords();
  std::vector<EventRecord> TakeEvents();
  // Moves out what was buffered for the records inside node `node` (map
  // items "node[3]", inner nodes "node/x"), records collapsed as above, and
  // the node's own history events (IsHistoryKind), to be written while the
  // claim runs (pg::WriteUnderClaim).
  void TakeInner(const std::string& node, std::vector<NodeRecord>* records,
                 std::vector<EventRecord>* events);

  // Puts back what TakeInner took, ahead of what came since (a write failed).
  void Restore(std::vector<NodeRecord> records, std::vector<EventRecord> events);

  // Held while inner records are taken and written, and by the node's
  // final commit, so that the two never cross.
  Mutex flush_mu;

  Status CreateRun(const RunRecord& run) override;
  Result<ClaimedRun> ClaimRun(const RunRecord& run, int64_t expected_epoch,
                              const std::function<bool(const Owner&, double)>& owner_alive) override;
  Result<ClaimedRun> ClaimRunForRerun(
      const RunRecord& run, int64_t expected_epoch, const std::string& from,
      const std::vector<std::string>& rerun,
      const std::function<bool(const Owner&, double)>& owner_alive) override;
  Status CreateForkedRun(const RunRecord& run, const std::vector<NodeRecord>& kept) override;
  void SaveNode(NodeRecord node) override;
  void FinishNode(NodeRecord node, EventRecord event) override;
  void AppendEvent(EventRecord event) override;
  void FinishRun(std::string run_id, RunStatus status, std::string error,
                 double finished_at) override {}
  void Heartbeat(std::string run_id, double now) override {}
  Status Flush() override { return WriteHealth(); }
  Status WriteHealth() override;
  Result<RunRecord> GetRun(const std::string& id) override;
  Result<std::vector<NodeRecord>> GetNodes(const std::string& run_id) override;
  Result<std::vector<EventRecord>> GetEvents(const std::string& run_id) override;
  Result<std::vector<RunListing>> ListRuns(const RunFilter& filter) override;
  Result<std::vector<ScriptVersion>> GetScriptVersions(const std::string& run_id) override;
  Result<int64_t> DeleteFinishedBefore(double wall_time) override;
  Result<BreakerSnapshot> UpdateBreaker(
      const std::string& key, const std::function<void(BreakerSnapshot&)>& update) override;
  Result<std::vector<BreakerRow>> ListBreakers() override;
  Status SendSignal(const std::string& run_id, const std::string& name,
                    const std::string& data_json, double now) override;
  Result<std::optional<std::string>> TakeSignal(const std::string& run_id, const std::string& name,
                                                const std::string& node, double now) override;
  Result<CancelOutcome> CancelRun(
      const std::string& run_id, double now,
      const std::function<bool(const Owner&, double)>& owner_alive) override;
  Result<bool> CancelRequested(const std::string& run_id) override;
  Result<int64_t> ResetBreakers(const std::string& key) override;

 private:
  BreakerBook* const book_;
  Store* const shared_;
  Mutex mu_;
  std::string failed_ GUARDED_BY(mu_);  // why WriteHealth fails; empty: it does not
  std::vector<NodeRecord> records_ GUARDED_BY(mu_);
  std::vector<EventRecord> events_ GUARDED_BY(mu_);
};

}  // namespace keel::cli
