#pragma once
// SqliteWriter: the write side of SqliteStore — the one connection that
// writes, its cached statements, and the per-run event sequence counters.
//
// Not thread-safe: SqliteStore's writer thread is its only user (and Open,
// before that thread starts).

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "engine/circuit_breaker.h"
#include "store/sqlite/sqlite_util.h"
#include "store/sqlite/sqlite_versions.h"
#include "engine/store.h"

namespace keel::sqlite {

class SqliteWriter {
 public:
  // Takes `conn` (already migrated) and prepares the statements. A
  // synchronous call (CreateRun, ClaimRun, ...) waits up to `busy_timeout`
  // seconds for another process's write lock; Begin() tries once, briefly.
  static Result<std::unique_ptr<SqliteWriter>> Create(std::unique_ptr<Connection> conn,
                                                      double busy_timeout);

  SqliteWriter(const SqliteWriter&) = delete;
  SqliteWriter& operator=(const SqliteWriter&) = delete;

  // A batch transaction: Begin, any number of the queued-write methods below,
  // then Commit, or Rollback after any failure. Begin waits only briefly for
  // another process's write lock (kTransient when it could not get it).
  // The queued-write methods refuse (kPermanent, and fenced() turns true) a
  // write for a run whose epoch is no longer the one this writer created or
  // claimed it with.
  Status Begin();
  Status Commit();
  void Rollback();

  Status SaveNode(const NodeRecord& node);
  // Assigns the event the run's next sequence number.
  Status AppendEvent(const EventRecord& event);
  Status FinishRun(const std::string& run_id, RunStatus status, const std::string& error,
                   double finished_at);
  Status Heartbeat(const std::string& run_id, double now);

  // Each in a transaction of its own; see Store for the contracts.
  // CreateRun with `kept` is CreateForkedRun.
  Status CreateRun(const RunRecord& run, const std::vector<NodeRecord>& kept = {});
  // The nodes `keel resume --from` runs again (Store::ClaimRunForRerun).
  struct Rerun {
    std::string from;
    std::vector<std::string> nodes;
  };
  // ClaimRun, or ClaimRunForRerun when `rerun` is not null.
  Result<ClaimedRun> ClaimRun(const RunRecord& run, int64_t expected_epoch,
                              const std::function<bool(const Owner&, double)>& owner_alive,
                              const Rerun* rerun = nullptr);
  Result<int64_t> DeleteFinishedBefore(double wall_time);
  // `now` (wall seconds) is recorded as the row's updated_at.
  Result<BreakerSnapshot> UpdateBreaker(const std::string& key,
                                        const std::function<void(BreakerSnapshot&)>& update,
                                        double now);
  Result<int64_t> ResetBreakers(const std::string& key);
  // Signals and cancellation (sqlite_waits.cc).
  Status SendSignal(const std::string& run_id, const std::string& name,
                    const std::string& data_json, double now);
  Result<std::optional<std::string>> TakeSignal(const std::string& run_id, const std::string& name,
                                                const std::string& node, double now);
  Result<CancelOutcome> CancelRun(const std::string& run_id, double now,
                                  const std::function<bool(const Owner&, double)>& owner_alive);
  // Hand-offs to `keel serve` (sqlite_handoff.cc).
  Result<int64_t> HandOffRun(const std::string& run_id, int64_t expected_epoch, const Owner& to,
                             double now, const EventRecord& event,
                             const std::function<bool(const Owner&, double)>& owner_alive);
  Status ReleaseRun(const std::string& run_id, int64_t epoch, const Owner& none, double now,
                    const std::string& error);
  Status AppendEventOnce(const EventRecord& event);

  // Alerts outbox (sqlite_alerts.cc); see Store for the contracts.
  Result<int64_t> ScanAlerts(double now, double overlap_s);
  Result<std::vector<Store::AlertRow>> ClaimAlerts(const std::string& owner, double now,
                                                   double lease_s, int limit);
  Result<bool> CompleteAlert(int64_t id, const std::string& owner, bool delivered, double now,
                             double retry_at, const std::string& error);

  // Schedules (sqlite_schedules.cc): Store::RecordScheduleTick.
  Result<Store::TickOutcome> RecordScheduleTick(const std::string& key, int64_t tick,
                                                const RunRecord& run);

  // Shared rate limits and concurrency lanes (sqlite_quota.cc):
  // Store::TakeQuota and Store::HoldSlots.
  Result<QuotaGrant> TakeQuota(const std::string& key, double want, double rate_per_s,
                               double burst, double now);
  Result<int> HoldSlots(const std::string& key, const std::string& holder, int want, int limit,
                        double lease_s, double now);

  // Whether a write was refused because another process took its run over.
  bool fenced() const { return fenced_; }

  const std::string& path() const { return conn_->path(); }

 private:
  SqliteWriter(std::unique_ptr<Connection> conn, double busy_timeout)
      : conn_(std::move(conn)), busy_timeout_(busy_timeout) {}

  Status PrepareAll();
  // Inside a transaction: inserts `run`, its script version 1 and `kept`;
  // kPermanent ("... already exists") when the id is taken.
  Status InsertRun(const RunRecord& run, const std::vector<NodeRecord>& kept);
  // The next event sequence number of `run_id`, read from the table on the
  // first use after opening or after a rollback.
  Result<int64_t> NextSeq(const std::string& run_id);
  // Runs `body` between BEGIN IMMEDIATE and COMMIT; rolls back when it fails.
  Status InTransaction(const std::function<Status()>& body) { return InTransaction("", body); }
  // The same; `what` names the transaction in the error of a COMMIT that
  // fails (a full disk shows when the write-ahead log grows, at commit).
  Status InTransaction(std::string_view what, const std::function<Status()>& body);
  // Refuses writes for `run_id` when its epoch is not the one held for it;
  // reads the epoch once per transaction.
  Status CheckEpoch(const std::string& run_id);
  // Inside ClaimRun: resets the records `rerun` runs again and reads the
  // run's *nodes again.
  Status ResetForRerun(const RunRecord& run, const Rerun& rerun, std::vector<NodeRecord>* nodes);
  // Inside a transaction: kPermanent when run `run_id` (recorded `status`)
  // was cancelled or asked to cancel, so it may not be resumed.
  Status RefuseCancelled(const std::string& run_id, RunStatus status);

  std::unique_ptr<Connection> conn_;
  const double busy_timeout_;
  // The epoch this writer holds per run it created or claimed.
  std::unordered_map<std::string, int64_t> held_epochs_;
  // Runs whose epoch was checked in the open transaction.
  std::unordered_set<std::string> checked_epochs_;
  bool fenced_ = false;
  // Next sequence number per run, valid only for what this connection committed
  // or is about to commit; cleared on rollback.
  std::unordered_map<std::string, int64_t> next_seq_;

  Statement save_node_;
  Statement append_event_;
  Statement max_seq_;
  Statement finish_run_;
  Statement heartbeat_;
  Statement insert_run_;
  Statement run_full_;
  Statement run_epoch_;
  Statement nodes_;
  Statement claim_run_;
  Statement delete_events_;
  Statement delete_nodes_;
  Statement delete_signals_;
  Statement delete_runs_;
  Statement get_breaker_;
  Statement put_breaker_;
  Statement reset_breakers_;
  VersionWriter versions_;  // config and script versions (schema version 6)
};

}  // namespace keel::sqlite
