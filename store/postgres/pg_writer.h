#pragma once
// PgWriter: the write side of PostgresStore — the connection that commits
// the queued writes (WriteQueue::Backend), the epochs and script versions
// this process holds per run, and the synchronous writes that change them
// (CreateRun, ClaimRun, ...; pg_claims.cc).
//
// Not thread-safe: the store's writer thread is its only user.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/store.h"
#include "store/common/write_queue.h"
#include "store/postgres/pg_connection.h"

namespace keel::pg {

class PgWriter final : public WriteQueue::Backend {
 public:
  explicit PgWriter(std::unique_ptr<Connection> conn) : conn_(std::move(conn)) {}

  // One transaction in two round trips: the first locks the rows of the
  // runs written (FOR UPDATE, in id order), checks their epochs and reads
  // their last event seqs and the transaction's id; the second sends every
  // write and the COMMIT. When the connection is lost before the COMMIT's
  // answer came, the next call looks the transaction up (txid_status) and
  // treats the batch as written if it committed.
  Status Commit(const std::vector<const QueuedRecord*>& records) override;
  bool Hopeless(const Status& failure) override { return fenced_; }
  std::string StallDetail(const Status& failure, double seconds) override;

  // Synchronous writes, each in a transaction of its own (pg_claims.cc).
  // CreateRun with `kept` is CreateForkedRun.
  Status CreateRun(const RunRecord& run, const std::vector<NodeRecord>& kept);
  // ClaimRun, or ClaimRunForRerun when `rerun` is not null.
  struct Rerun {
    std::string from;
    std::vector<std::string> nodes;
  };
  Result<ClaimedRun> ClaimRun(const RunRecord& run, int64_t expected_epoch,
                              const std::function<bool(const Owner&, double)>& owner_alive,
                              const Rerun* rerun);
  Result<int64_t> DeleteFinishedBefore(double wall_time);

  Connection& conn() { return *conn_; }
  // The epoch this process holds for `run_id`, 0 when none.
  int64_t HeldEpoch(const std::string& run_id) const;

 private:
  // Resolves a batch whose COMMIT went unanswered: true when it committed,
  // false when it did not; kTransient while it cannot tell yet.
  Result<bool> Resolve();
  // Inside a claim: the script version the run runs with from now on, and
  // what changed (sqlite_versions.cc's RecordClaimed).
  Status RecordClaimed(const RunRecord& before, const RunRecord& run, ClaimedRun* claimed);
  Status ResetForRerun(const RunRecord& run, const Rerun& rerun, std::vector<NodeRecord>* nodes);

  std::unique_ptr<Connection> conn_;
  struct Held {
    int64_t epoch = 0;
    int script_version = 1;
  };
  std::unordered_map<std::string, Held> held_;
  // The transaction id of a batch whose COMMIT was sent but not answered.
  std::optional<int64_t> unresolved_xid_;
  bool fenced_ = false;
};

}  // namespace keel::pg
