#pragma once
// PostgresStore: the Store kept in one PostgreSQL database, which any number
// of processes on any number of hosts may use at once.
//
// Thread-safety: every method may be called from any thread at any time.
// Queued writes (SaveNode, FinishNode, AppendEvent, FinishRun, Heartbeat) go
// into a WriteQueue (store/write_queue.h) that one writer thread drains: it
// lets a burst gather, then commits it as one transaction sent in two round
// trips (libpq pipeline mode), whatever its size: group commit. The writer
// thread owns its own connection. CreateRun, CreateForkedRun, ClaimRun,
// ClaimRunForRerun, DeleteFinishedBefore and the other synchronous writes
// run on the writer thread too, after the writes queued before them, each
// in a transaction of its own. Reads borrow connections from a Pool and see
// only committed data.
//
// Failures: a batch that fails is rolled back and retried whole, with
// backoff, holding every later write back; a lost connection is opened
// again. A batch whose COMMIT went unanswered is looked up by its
// transaction id (txid_status) before it is retried, so it is never applied
// twice. When writes have kept failing for `stall_timeout` seconds, or at
// once when they never can (the run was taken over by another process), the
// writer gives up: WriteHealth() and Flush() return the cause from then on
// and nothing more is written.
//
// Fencing: the store holds an epoch per run it created or claimed; every
// batch locks the rows of the runs it writes (FOR UPDATE) and refuses
// (kPermanent, "taken over") when one's epoch is no longer the one held.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/clock.h"
#include "engine/mutex.h"
#include "engine/store.h"

namespace keel {

class WriteQueue;

namespace pg {
class Connection;
class Pool;
class PgWriter;
}  // namespace pg

struct PostgresStoreOptions {
  // Seconds queued writes may keep failing (retried, later ones held back)
  // before the store gives up on the database (see Store::WriteHealth).
  double stall_timeout = 30;
  // Stamps breakers' updated_at; null means SystemClock(). Must outlive the store.
  Clock* clock = nullptr;
  // When false, a database without keel's schema is an error instead of
  // being given one.
  bool create_schema = true;
  // Connections kept idle for reads (the writer has one of its own).
  int pool_size = 4;
};

class PostgresStore final : public Store {
 public:
  // Connects to the database at `url` (postgresql:// or postgres://) and
  // brings its schema to this binary's version. Fails with kPermanent,
  // naming the URL without its password, for a malformed URL, a server that
  // does not answer within a few seconds, a missing database, a database
  // holding another program's tables, or a schema newer than this binary.
  static Result<std::unique_ptr<PostgresStore>> Open(const std::string& url,
                                                     const PostgresStoreOptions& options);

  // Whether the database at `url` holds a keel schema: false when keel
  // never wrote to it. Writes nothing. Fails like Open otherwise.
  static Result<bool> Exists(const std::string& url);

  // Commits everything queued, then closes. Errors at this point are lost:
  // call Flush() first to see them.
  ~PostgresStore() override;

  PostgresStore(const PostgresStore&) = delete;
  PostgresStore& operator=(const PostgresStore&) = delete;

  // Runs and claims (pg_claims.cc).
  Status CreateRun(const RunRecord& run) override;
  Result<ClaimedRun> ClaimRun(
      const RunRecord& run, int64_t expected_epoch,
      const std::function<bool(const Owner&, double)>& owner_alive) override;
  Result<ClaimedRun> ClaimRunForRerun(
      const RunRecord& run, int64_t expected_epoch, const std::string& from,
      const std::vector<std::string>& rerun,
      const std::function<bool(const Owner&, double)>& owner_alive) override;
  Status CreateForkedRun(const RunRecord& run, const std::vector<NodeRecord>& kept) override;

  // Queued writes (pg_store.cc, committed by pg_writer.cc).
  void SaveNode(NodeRecord node) override;
  void FinishNode(NodeRecord node, EventRecord event) override;
  void AppendEvent(EventRecord event) override;
  void FinishRun(std::string run_id, RunStatus status, std::string error,
                 double finished_at) override;
  void Heartbeat(std::string run_id, double now) override;
  Status Flush() override;
  Status WriteHealth() override;
  uint64_t Backlog() override;

  // Reads (pg_reads.cc).
  Result<RunRecord> GetRun(const std::string& id) override;
  Result<std::vector<NodeRecord>> GetNodes(const std::string& run_id) override;
  Result<std::vector<EventRecord>> GetEvents(const std::string& run_id) override;
  Result<std::vector<RunListing>> ListRuns(const RunFilter& filter) override;
  Result<std::vector<ScriptVersion>> GetScriptVersions(const std::string& run_id) override;
  Result<int64_t> DeleteFinishedBefore(double wall_time) override;
  Status CheckReady() override;
  Result<int64_t> DataVersion() override;

  // Breakers (pg_breakers.h).
  Result<BreakerSnapshot> UpdateBreaker(
      const std::string& key, const std::function<void(BreakerSnapshot&)>& update) override;
  Result<std::vector<BreakerRow>> ListBreakers() override;
  Result<int64_t> ResetBreakers(const std::string& key) override;
  // Signals and cancellation (pg_waits.h).
  Status SendSignal(const std::string& run_id, const std::string& name,
                    const std::string& data_json, double now) override;
  Result<std::optional<std::string>> TakeSignal(const std::string& run_id, const std::string& name,
                                                const std::string& node, double now) override;
  Result<CancelOutcome> CancelRun(
      const std::string& run_id, double now,
      const std::function<bool(const Owner&, double)>& owner_alive) override;
  Result<bool> CancelRequested(const std::string& run_id) override;
  // Starting and supervising runs (pg_handoff.h).
  Result<std::vector<StartCandidate>> ListRunsToStart(double now, bool stopped,
                                                      int limit) override;
  Result<int64_t> HandOffRun(const std::string& run_id, int64_t expected_epoch, const Owner& to,
                             double now, const EventRecord& event,
                             const std::function<bool(const Owner&, double)>& owner_alive) override;
  Status ReleaseRun(const std::string& run_id, int64_t epoch, const Owner& none, double now,
                    const std::string& error) override;
  Status AppendEventOnce(const EventRecord& event) override;
  // Alerts outbox (pg_alerts.h).
  Result<int64_t> ScanAlerts(double now, double overlap_s) override;
  Result<std::vector<AlertRow>> ClaimAlerts(const std::string& owner, double now, double lease_s,
                                            int limit) override;
  Result<bool> CompleteAlert(int64_t id, const std::string& owner, bool delivered, double now,
                             double retry_at, const std::string& error) override;
  // The global event cursor (pg_event_cursor.h).
  Result<std::vector<CursorEvent>> ReadEventsAfter(int64_t after, const std::string& run_id,
                                                   int limit) override;
  Result<int64_t> LastEventCursor() override;
  Result<StateCounts> CountState() override;
  // Schedules (pg_schedules.h).
  Result<TickOutcome> RecordScheduleTick(const std::string& key, int64_t tick,
                                         const RunRecord& run) override;
  Result<std::vector<ScheduleTick>> LastScheduleTicks() override;
  // Event pages and dashboard reads (pg_node_reads.h).
  Result<std::vector<EventRecord>> GetEventsAfter(const std::string& run_id, int64_t after,
                                                  int limit) override;
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
  // Shared rate limits (pg_quota.h), timed by the database's clock: `now` is
  // not used.
  Result<QuotaGrant> TakeQuota(const std::string& key, double want, double rate_per_s,
                               double burst, double now) override;
  Result<int> HoldSlots(const std::string& key, const std::string& holder, int want, int limit,
                        double lease_s, double now) override;

  // The database, as messages name it: the URL without its password.
  const std::string& name() const { return name_; }

 private:
  PostgresStore(const std::string& url, const PostgresStoreOptions& options,
                std::unique_ptr<pg::Connection> writer_conn);

  // Runs `fn` with the writer's connection on the writer thread, after the
  // writes queued before it (or, when `urgent`, ahead of them), and returns
  // its status.
  Status OnWriter(const std::function<Status(pg::Connection&)>& fn, bool urgent = false);
  // Runs `fn` with a connection borrowed from the pool.
  Status OnReader(const std::function<Status(pg::Connection&)>& fn);
  // ClaimRun, or ClaimRunForRerun when `from` is not null, on the writer thread.
  Result<ClaimedRun> Claim(const RunRecord& run, int64_t expected_epoch,
                           const std::function<bool(const Owner&, double)>& owner_alive,
                           const std::string* from, const std::vector<std::string>* rerun);

  const std::string name_;
  Clock* const clock_;
  std::unique_ptr<pg::Pool> pool_;
  // Used only on the writer thread.
  std::unique_ptr<pg::PgWriter> writer_;
  // Declared last: its thread stops (having committed everything queued)
  // before the writer and the pool go.
  std::unique_ptr<WriteQueue> queue_;
};

}  // namespace keel
