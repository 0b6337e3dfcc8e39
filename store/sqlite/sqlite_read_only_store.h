#pragma once
// SqliteReadOnlyStore: a keel database opened only to read it, for the
// commands that list history (runs, show, graph, breakers) when the user may
// not write the file or its directory. It opens the file read-only and
// touches nothing: without a write-ahead log (no process has it open for
// writing) the file is read as immutable, so no -wal or -shm file is needed.
//
// Every write fails (kPermanent, naming the file); queued writes report it
// from Flush(). Thread-safety: every method may be called from any thread;
// reads are serialized by one mutex.

#include <memory>
#include <string>

#include "engine/mutex.h"
#include "engine/store.h"

namespace keel {

namespace sqlite {
class SqliteReader;
}  // namespace sqlite

class SqliteReadOnlyStore final : public Store {
 public:
  // Opens the keel database at `path` for reading. Fails (kPermanent, naming
  // `path`) when it is missing, is not a keel database, or cannot be read.
  // The caller owns the store.
  static Result<std::unique_ptr<SqliteReadOnlyStore>> Open(const std::string& path,
                                                           double busy_timeout);
  ~SqliteReadOnlyStore() override;

  Status CreateRun(const RunRecord& run) override;
  Status CreateForkedRun(const RunRecord& run, const std::vector<NodeRecord>& kept) override;
  Result<ClaimedRun> ClaimRunForRerun(
      const RunRecord& run, int64_t expected_epoch, const std::string& from,
      const std::vector<std::string>& rerun,
      const std::function<bool(const Owner&, double)>& owner_alive) override;
  Result<ClaimedRun> ClaimRun(
      const RunRecord& run, int64_t expected_epoch,
      const std::function<bool(const Owner&, double)>& owner_alive) override;
  Status WriteHealth() override;
  void SaveNode(NodeRecord node) override;
  void FinishNode(NodeRecord node, EventRecord event) override;
  void AppendEvent(EventRecord event) override;
  void FinishRun(std::string run_id, RunStatus status, std::string error,
                 double finished_at) override;
  void Heartbeat(std::string run_id, double now) override;
  Status Flush() override;

  Result<RunRecord> GetRun(const std::string& id) override;
  Result<std::vector<NodeRecord>> GetNodes(const std::string& run_id) override;
  Result<std::vector<EventRecord>> GetEvents(const std::string& run_id) override;
  Result<std::vector<RunListing>> ListRuns(const RunFilter& filter) override;
  Result<std::vector<ScriptVersion>> GetScriptVersions(const std::string& run_id) override;
  Result<int64_t> DeleteFinishedBefore(double wall_time) override;
  Result<BreakerSnapshot> UpdateBreaker(
      const std::string& key, const std::function<void(BreakerSnapshot&)>& update) override;
  Result<std::vector<BreakerRow>> ListBreakers() override;
  Result<int64_t> ResetBreakers(const std::string& key) override;
  Status SendSignal(const std::string& run_id, const std::string& name,
                    const std::string& data_json, double now) override;
  Result<std::optional<std::string>> TakeSignal(const std::string& run_id, const std::string& name,
                                                const std::string& node, double now) override;
  Result<CancelOutcome> CancelRun(
      const std::string& run_id, double now,
      const std::function<bool(const Owner&, double)>& owner_alive) override;
  Result<bool> CancelRequested(const std::string& run_id) override;
  Result<std::vector<CursorEvent>> ReadEventsAfter(int64_t after, const std::string& run_id,
                                                   int limit) override;
  Result<int64_t> LastEventCursor() override;
  Result<StateCounts> CountState() override;
  // store/sqlite/sqlite_node_reads.cc: the dashboard reads.
  Result<std::optional<NodeRecord>> GetNode(const std::string& run_id,
                                            const std::string& node) override;
  Result<std::vector<NodeRecord>> GetNodesInStatus(const std::string& run_id, NodeStatus status,
                                                   int limit) override;
  Result<std::vector<EventRecord>> GetNodeEvents(const std::string& run_id,
                                                 const std::string& node, int limit) override;
  Result<ItemPage> ListMapItems(const std::string& run_id, const std::string& map,
                                std::optional<NodeStatus> status, int64_t offset,
                                int limit) override;
  Result<std::vector<ItemCount>> CountMapItems(const std::string& run_id) override;
  Result<RunOutline> GetRunOutline(const std::string& run_id) override;

 private:
  SqliteReadOnlyStore(std::string path, std::unique_ptr<sqlite::SqliteReader> reader);
  Status ReadOnly() const;

  const std::string path_;
  Mutex mu_;
  std::unique_ptr<sqlite::SqliteReader> reader_ GUARDED_BY(mu_);
  bool dropped_write_ GUARDED_BY(mu_) = false;  // a queued write was refused
};

}  // namespace keel
