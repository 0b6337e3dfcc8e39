#pragma once
// SqliteStore: the Store kept in one SQLite file (WAL mode), which several
// processes may use at once.
//
// Thread-safety: every method may be called from any thread at any time.
// Queued writes (SaveNode, AppendEvent, FinishRun, Heartbeat) go into an
// in-memory FIFO (store/common/write_queue.h) that one writer thread
// drains: woken by a record, it lets
// the burst gather for a few milliseconds (less when someone waits for it),
// then commits everything queued in one transaction, in queue order (group
// commit).
// CreateRun, CreateForkedRun, ClaimRun, ClaimRunForRerun, DeleteFinishedBefore
// and ResetBreakers also run on the writer thread, in their own
// transactions, after the writes queued before them; UpdateBreaker does too,
// but ahead of the queued writes. Reads use a second connection under a
// mutex of their own and see only committed data.
//
// Failures: a batch that fails is rolled back and kept; the writer retries
// it with backoff (10 ms doubling to 1 s), holding every later write back,
// from where it failed, so commits stay in queue order and nothing is
// skipped. Another process's write lock is waited for the same way. When
// the writes have kept failing for `stall_timeout` seconds, or at once when
// they can never succeed (the run was taken over by another process, the
// database file was deleted or replaced), the writer gives up: WriteHealth()
// and Flush() return the cause from then on, queued writes are dropped, and
// nothing more is written, so what is durable stays a prefix of the queue.
// Only the writer thread decides to give up, between two attempts, so a
// store that reports it gave up never commits anything afterwards.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/clock.h"
#include "engine/mutex.h"
#include "engine/store.h"
#include "store/common/write_queue.h"

namespace keel {

namespace sqlite {
class SqliteReader;
class SqliteWriter;
}  // namespace sqlite

enum class SqliteDurability {
  kNormal,  // synchronous=NORMAL: commits survive a crash of the process;
            // the last ones may be lost if the machine loses power
  kFull,    // synchronous=FULL: every commit is synced to disk
};

struct SqliteStoreOptions {
  SqliteDurability durability = SqliteDurability::kNormal;
  // When false, a missing file (or an empty one) is an error instead of a
  // new database.
  bool create_if_missing = true;
  // Seconds a synchronous call (CreateRun, ClaimRun, UpdateBreaker, ...)
  // waits for another connection's write lock.
  double busy_timeout = 10;
  // Seconds queued writes may keep failing (retried, later ones held back)
  // before the store gives up on its storage (see WriteHealth).
  double stall_timeout = 30;
  // The registered SQLite VFS the store's connections use; empty: the
  // default one. Tests use it to inject faults.
  std::string vfs;
  // Stamps breakers' updated_at; null means SystemClock(). Must outlive the store.
  Clock* clock = nullptr;
};

class SqliteStore final : public Store {
 public:
  // Opens the keel database at `path`, creating and initializing it when
  // allowed, and migrating an older schema. Fails with kPermanent, naming
  // `path`, when it is missing (and may not be created), is not SQLite, is
  // another program's database or has a schema newer than this binary; such
  // a file is not modified at all. The caller owns the store.
  static Result<std::unique_ptr<SqliteStore>> Open(const std::string& path,
                                                   const SqliteStoreOptions& options);

  // Whether a keel database is at `path`: false when the file is missing or
  // empty, or another process has created it and not yet initialized it
  // (opening it with create_if_missing false then fails). Looks without
  // writing a byte or leaving a file behind, waiting up to `busy_timeout`
  // seconds for another process's lock. Fails like Open (kPermanent, naming
  // `path`) for a directory or a file that is not a keel database.
  static Result<bool> Exists(const std::string& path, double busy_timeout);

  // Commits everything queued, then closes. Errors at this point are lost:
  // call Flush() first to see them.
  ~SqliteStore() override;

  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  Status CreateRun(const RunRecord& run) override;
  Result<ClaimedRun> ClaimRun(
      const RunRecord& run, int64_t expected_epoch,
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
                 double finished_at) override;
  void Heartbeat(std::string run_id, double now) override;
  Status Flush() override;
  Status WriteHealth() override;
  uint64_t Backlog() override;

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
  // Looks on the reading connection first, so a wait polling for a signal
  // that has not come costs no write transaction.
  Result<std::optional<std::string>> TakeSignal(const std::string& run_id, const std::string& name,
                                                const std::string& node, double now) override;
  Result<CancelOutcome> CancelRun(
      const std::string& run_id, double now,
      const std::function<bool(const Owner&, double)>& owner_alive) override;
  Result<bool> CancelRequested(const std::string& run_id) override;
  // Starting and supervising runs (sqlite_handoff.cc).
  Result<std::vector<StartCandidate>> ListRunsToStart(double now, bool stopped,
                                                      int limit) override;
  Result<int64_t> HandOffRun(const std::string& run_id, int64_t expected_epoch, const Owner& to,
                             double now, const EventRecord& event,
                             const std::function<bool(const Owner&, double)>& owner_alive) override;
  Status ReleaseRun(const std::string& run_id, int64_t epoch, const Owner& none, double now,
                    const std::string& error) override;
  Status AppendEventOnce(const EventRecord& event) override;
  // Alerts outbox (sqlite_alerts.cc); on the writer thread.
  Result<int64_t> ScanAlerts(double now, double overlap_s) override;
  Result<std::vector<AlertRow>> ClaimAlerts(const std::string& owner, double now, double lease_s,
                                            int limit) override;
  Result<bool> CompleteAlert(int64_t id, const std::string& owner, bool delivered, double now,
                             double retry_at, const std::string& error) override;

  Result<std::vector<CursorEvent>> ReadEventsAfter(int64_t after, const std::string& run_id,
                                                   int limit) override;
  Result<int64_t> LastEventCursor() override;
  Result<StateCounts> CountState() override;
  // Schedules (sqlite_schedules.cc).
  Result<TickOutcome> RecordScheduleTick(const std::string& key, int64_t tick,
                                         const RunRecord& run) override;
  Result<std::vector<ScheduleTick>> LastScheduleTicks() override;
  // Shared rate limits (sqlite_quota.cc); on the writer thread, ahead of
  // queued writes as UpdateBreaker. A bucket or lane the storage refuses
  // (disk full, I/O error, another process's lock past busy_timeout) fails
  // kTransient, naming the file and the cause: asking later may help.
  Result<QuotaGrant> TakeQuota(const std::string& key, double want, double rate_per_s,
                               double burst, double now) override;
  Result<int> HoldSlots(const std::string& key, const std::string& holder, int want, int limit,
                        double lease_s, double now) override;
  // store/sqlite/sqlite_service_reads.cc: a connection of its own, so a lock held by
  // another process is seen at once instead of after the busy timeout.
  Status CheckReady() override;
  // store/sqlite/sqlite_service_reads.cc too.
  Result<std::vector<EventRecord>> GetEventsAfter(const std::string& run_id, int64_t after,
                                                  int limit) override;
  Result<int64_t> DataVersion() override;
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

  const std::string& path() const { return path_; }

 private:
  // The WriteQueue's view of this store (sqlite_store_writes.cc).
  class QueueBackend;

  SqliteStore(std::string path, const SqliteStoreOptions& options,
              std::unique_ptr<sqlite::SqliteWriter> writer,
              std::unique_ptr<sqlite::SqliteReader> reader);

  // Runs `fn` on the writer thread and returns its status: after everything
  // queued so far, or, when `urgent`, before whatever is still waiting.
  Status CallOnWriter(std::function<Status(sqlite::SqliteWriter*)> fn, bool urgent = false);
  std::unique_ptr<WriteQueue::Backend> MakeQueueBackend();
  // Whether the database file is still the one the store opened: an error
  // when it was deleted, or replaced by another file.
  Status CheckFile() const;

  const std::string path_;
  Clock* const clock_;
  const double stall_timeout_;
  // The database file the store opened, to notice it deleted or replaced.
  uint64_t file_dev_ = 0;
  uint64_t file_ino_ = 0;
  // Used only by the queue's writer thread. Declared before reader_ so that it closes
  // last, and the last connection to close checkpoints and removes the WAL.
  std::unique_ptr<sqlite::SqliteWriter> writer_;

  Mutex read_mu_;
  std::unique_ptr<sqlite::SqliteReader> reader_ GUARDED_BY(read_mu_);

  // The queue of queued writes and its writer thread, the only user of
  // writer_. Declared last: it commits what is queued and stops first.
  std::unique_ptr<WriteQueue::Backend> backend_;
  std::unique_ptr<WriteQueue> queue_;
};

}  // namespace keel
