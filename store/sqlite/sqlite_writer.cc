#include "store/sqlite/sqlite_writer.h"

#include <sqlite3.h>

#include <chrono>

#include "store/sqlite/sqlite_breakers.h"
#include "store/sqlite/sqlite_rows.h"
#include "store/sqlite/sqlite_vacuum.h"

namespace keel::sqlite {
namespace {

// ?10: the run's script version, when this writer holds the run; else the
// run's own.
constexpr char kSaveNode[] =
    "INSERT INTO nodes (run_id, node, status, attempts, output_json, error_kind, error_message, "
    "started_at, finished_at, script_version) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
    "COALESCE(?10, (SELECT script_version FROM runs WHERE id = ?1), 1)) "
    "ON CONFLICT (run_id, node) DO UPDATE SET status = excluded.status, "
    "attempts = excluded.attempts, output_json = excluded.output_json, "
    "error_kind = excluded.error_kind, error_message = excluded.error_message, "
    "started_at = excluded.started_at, finished_at = excluded.finished_at, "
    "script_version = excluded.script_version";
constexpr char kAppendEvent[] =
    "INSERT INTO events (run_id, seq, ts, node, kind, data_json) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
constexpr char kMaxSeq[] = "SELECT COALESCE(MAX(seq), 0) FROM events WHERE run_id = ?1";
constexpr char kFinishRun[] =
    "UPDATE runs SET status = ?2, error = ?3, "
    // An interrupted or waiting run has not finished: it keeps no finish time, so gc
    // leaves it and its duration stays unknown.
    "finished_at = CASE WHEN ?2 IN ('interrupted', 'waiting') THEN 0 ELSE ?4 END, "
    "updated_at = ?4 WHERE id = ?1";
constexpr char kHeartbeat[] = "UPDATE runs SET heartbeat = ?2 WHERE id = ?1";
constexpr char kInsertRun[] =
    "INSERT INTO runs (id, workflow, script_path, script_sha256, script_text, params_json, "
    "status, owner_pid, owner_host, owner_start, heartbeat, created_at, updated_at, finished_at, "
    "node_count, error) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, "
    "?15, ?16) ON CONFLICT (id) DO NOTHING";
constexpr char kRunEpoch[] = "SELECT epoch FROM runs WHERE id = ?1";
constexpr char kClaimRun[] =
    "UPDATE runs SET workflow = ?2, script_path = ?3, script_sha256 = ?4, script_text = ?5, "
    "status = 'running', owner_pid = ?6, owner_host = ?7, owner_start = ?8, heartbeat = ?9, "
    "updated_at = ?10, finished_at = 0, error = '', node_count = ?11, epoch = ?12, "
    "idle_s = idle_s + MAX(0, ?10 - MAX(heartbeat, updated_at, finished_at, COALESCE(("
    "SELECT MAX(MAX(started_at, finished_at)) FROM nodes WHERE run_id = ?1), 0))) "
    "WHERE id = ?1 AND epoch = ?13";
#define KEEL_FINISHED_BEFORE \
  "status NOT IN ('running', 'interrupted', 'waiting', 'queued') AND finished_at < ?1"
constexpr char kDeleteEvents[] =
    "DELETE FROM events WHERE run_id IN (SELECT id FROM runs WHERE " KEEL_FINISHED_BEFORE ")";
constexpr char kDeleteNodes[] =
    "DELETE FROM nodes WHERE run_id IN (SELECT id FROM runs WHERE " KEEL_FINISHED_BEFORE ")";
constexpr char kDeleteSignals[] =
    "DELETE FROM signals WHERE run_id IN (SELECT id FROM runs WHERE " KEEL_FINISHED_BEFORE ")";
constexpr char kDeleteRuns[] = "DELETE FROM runs WHERE " KEEL_FINISHED_BEFORE;
#undef KEEL_FINISHED_BEFORE
constexpr char kResetBreakers[] = "DELETE FROM breakers WHERE ?1 = '' OR key = ?1";

// Adds which record failed to a failed status. The context is built only on
// failure, off the hot path.
Status About(Status status, const std::string& run_id, const std::string& node = "") {
  if (status.ok()) return status;
  std::string context =
      node.empty() ? " (run " + run_id + ")" : " (node '" + node + "' of run " + run_id + ")";
  return Status::Error(status.kind(), status.message() + context);
}


// How long one attempt at the write lock waits inside SQLite's busy
// handler. Kept short so the writer thread stays in charge of how long it
// waits in all (see SqliteStore's stall timeout).
constexpr int kLockWaitMillis = 100;

}  // namespace

Result<std::unique_ptr<SqliteWriter>> SqliteWriter::Create(std::unique_ptr<Connection> conn,
                                                           double busy_timeout) {
  sqlite3_busy_timeout(conn->get(), kLockWaitMillis);
  std::unique_ptr<SqliteWriter> writer(new SqliteWriter(std::move(conn), busy_timeout));
  Status status = writer->PrepareAll();
  if (!status.ok()) return status;
  return writer;
}

Status SqliteWriter::PrepareAll() {
  const std::string get_breaker =
      std::string("SELECT ") + kBreakerColumns + " FROM breakers WHERE key = ?1";
  const std::string run_full = std::string("SELECT ") + kRunColumnsHead + "script_text" +
                               kRunColumnsTail + " FROM runs WHERE id = ?1";
  const std::string put_breaker =
      std::string("INSERT OR REPLACE INTO breakers (key, ") + kBreakerColumns +
      ", updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";
  struct Item {
    Statement* stmt;
    const char* sql;
  };
  const Item items[] = {
      {&save_node_, kSaveNode},
      {&append_event_, kAppendEvent},
      {&max_seq_, kMaxSeq},
      {&finish_run_, kFinishRun},
      {&heartbeat_, kHeartbeat},
      {&insert_run_, kInsertRun},
      {&run_full_, run_full.c_str()},
      {&run_epoch_, kRunEpoch},
      {&nodes_, kSelectNodes},
      {&claim_run_, kClaimRun},
      {&delete_events_, kDeleteEvents},
      {&delete_nodes_, kDeleteNodes},
      {&delete_signals_, kDeleteSignals},
      {&delete_runs_, kDeleteRuns},
      {&get_breaker_, get_breaker.c_str()},
      {&put_breaker_, put_breaker.c_str()},
      {&reset_breakers_, kResetBreakers},
  };
  for (const Item& item : items) {
    Status status = item.stmt->Prepare(conn_.get(), item.sql);
    if (!status.ok()) return status;
  }
  return versions_.Prepare(conn_.get());
}

Status SqliteWriter::Begin() {
  checked_epochs_.clear();
  return conn_->BeginImmediate(0);
}

Status SqliteWriter::Commit() { return conn_->Exec("COMMIT", "committing"); }

void SqliteWriter::Rollback() {
  conn_->Rollback();
  next_seq_.clear();
  checked_epochs_.clear();
}

Status SqliteWriter::InTransaction(std::string_view what, const std::function<Status()>& body) {
  // The busy handler waits only briefly (kLockWaitMillis); a synchronous
  // call waits for another process's lock up to busy_timeout_ in all.
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                            std::chrono::duration<double>(busy_timeout_));
  Status status = Begin();
  while (status.kind() == ErrorKind::kTransient && std::chrono::steady_clock::now() < deadline) {
    status = Begin();
  }
  if (!status.ok()) return status;
  status = body();
  if (status.ok()) {
    status = what.empty() ? Commit() : conn_->Exec("COMMIT", "committing " + std::string(what));
  }
  if (!status.ok()) Rollback();
  return status;
}

Status SqliteWriter::CheckEpoch(const std::string& run_id) {
  auto held = held_epochs_.find(run_id);
  if (held == held_epochs_.end() || checked_epochs_.count(run_id)) return Status::Ok();
  Status status;
  run_epoch_.Bind(1, run_id);
  bool found = run_epoch_.Step(&status, "reading the epoch of run " + run_id);
  int64_t epoch = found ? run_epoch_.Int(0) : 0;
  run_epoch_.Reset();
  if (!status.ok()) return status;
  if (!found || epoch != held->second) {
    fenced_ = true;
    return Status::Error(
        ErrorKind::kPermanent,
        found ? "run " + run_id + " was taken over by another process (epoch " +
                    std::to_string(epoch) + ", this process holds " +
                    std::to_string(held->second) + "); this process stops writing it"
              : "run " + run_id + " was deleted from " + conn_->path() + " by another process");
  }
  checked_epochs_.insert(run_id);
  return Status::Ok();
}

Status SqliteWriter::SaveNode(const NodeRecord& node) {
  Status fence = CheckEpoch(node.run_id);
  if (!fence.ok()) return fence;
  save_node_.Bind(1, node.run_id)
      .Bind(2, node.node)
      .Bind(3, NodeStatusName(node.status))
      .Bind(4, node.attempts)
      .Bind(6, ErrorKindName(node.error_kind))
      .Bind(7, node.error_message)
      .Bind(8, node.started_at)
      .Bind(9, node.finished_at);
  if (auto version = versions_.HeldVersion(node.run_id)) {
    save_node_.Bind(10, *version);
  } else {
    save_node_.BindNull(10);
  }
  if (node.output_json) {
    save_node_.Bind(5, *node.output_json);
  } else {
    save_node_.BindNull(5);
  }
  return About(save_node_.Run("saving a node"), node.run_id, node.node);
}

Result<int64_t> SqliteWriter::NextSeq(const std::string& run_id) {
  auto it = next_seq_.find(run_id);
  if (it == next_seq_.end()) {
    Status status;
    max_seq_.Bind(1, run_id);
    int64_t last = max_seq_.Step(&status, "reading the last event") ? max_seq_.Int(0) : 0;
    max_seq_.Reset();
    if (!status.ok()) return About(status, run_id);
    it = next_seq_.emplace(run_id, last + 1).first;
  }
  return it->second++;
}

Status SqliteWriter::AppendEvent(const EventRecord& event) {
  Status fence = CheckEpoch(event.run_id);
  if (!fence.ok()) return fence;
  auto seq = NextSeq(event.run_id);
  if (!seq.ok()) return seq.status();
  append_event_.Bind(1, event.run_id)
      .Bind(2, *seq)
      .Bind(3, event.ts)
      .Bind(4, event.node)
      .Bind(5, event.kind)
      .Bind(6, event.data_json);
  return About(append_event_.Run("appending an event"), event.run_id, event.node);
}

Status SqliteWriter::FinishRun(const std::string& run_id, RunStatus status,
                               const std::string& error, double finished_at) {
  Status fence = CheckEpoch(run_id);
  if (!fence.ok()) return fence;
  finish_run_.Bind(1, run_id).Bind(2, RunStatusName(status)).Bind(3, error).Bind(4, finished_at);
  return About(finish_run_.Run("finishing a run"), run_id);
}

Status SqliteWriter::Heartbeat(const std::string& run_id, double now) {
  Status fence = CheckEpoch(run_id);
  if (!fence.ok()) return fence;
  heartbeat_.Bind(1, run_id).Bind(2, now);
  return About(heartbeat_.Run("writing a heartbeat"), run_id);
}

Status SqliteWriter::CreateRun(const RunRecord& run, const std::vector<NodeRecord>& kept) {
  Status created = InTransaction([&] { return InsertRun(run, kept); });
  if (created.ok()) held_epochs_[run.id] = 1;
  return created;
}

Status SqliteWriter::InsertRun(const RunRecord& run, const std::vector<NodeRecord>& kept) {
  insert_run_.Bind(1, run.id)
      .Bind(2, run.workflow)
      .Bind(3, run.script_path)
      .Bind(4, run.script_sha256)
      .Bind(5, run.script_text)
      .Bind(6, run.params_json)
      .Bind(7, RunStatusName(run.status))
      .Bind(8, run.owner.pid)
      .Bind(9, run.owner.host)
      .Bind(10, run.owner.start_ticks)
      .Bind(11, run.heartbeat)
      .Bind(12, run.created_at)
      .Bind(13, run.updated_at)
      .Bind(14, run.finished_at)
      .Bind(15, run.node_count)
      .Bind(16, run.error);
  Status status = insert_run_.Run("creating run " + run.id);
  if (status.ok() && sqlite3_changes(conn_->get()) == 0) {
    status = Status::Error(ErrorKind::kPermanent,
                           "run " + run.id + " already exists in " + conn_->path());
  }
  if (status.ok()) status = versions_.RecordCreated(run);
  if (status.ok()) status = versions_.CopyNodes(run.id, kept);
  return status;
}

Result<ClaimedRun> SqliteWriter::ClaimRun(
    const RunRecord& run, int64_t expected_epoch,
    const std::function<bool(const Owner&, double)>& owner_alive, const Rerun* rerun) {
  ClaimedRun claimed;
  Status status = InTransaction([&] {
    Status s;
    run_full_.Bind(1, run.id);
    bool found = run_full_.Step(&s, "reading run " + run.id);
    if (found) RunFromRow(run_full_, &claimed.before);
    run_full_.Reset();
    if (!s.ok()) return s;
    const RunRecord& before = claimed.before;
    if (!found) {
      return Status::Error(ErrorKind::kPermanent, "no run '" + run.id + "' in " + conn_->path());
    }
    if (before.status == RunStatus::kSucceeded && rerun == nullptr) {
      return Status::Error(ErrorKind::kPermanent,
                           "run " + run.id + " already succeeded; nothing to resume");
    }
    s = RefuseCancelled(run.id, before.status);
    if (!s.ok()) return s;
    if (before.epoch != expected_epoch) {
      return Status::Error(ErrorKind::kPermanent,
                           "run " + run.id + " was taken over by another process (pid " +
                               std::to_string(before.owner.pid) + "@" + before.owner.host +
                               ") meanwhile; this process leaves it alone");
    }
    if (owner_alive(before.owner, run.heartbeat - before.heartbeat)) {
      return Status::Error(ErrorKind::kPermanent,
                           "run " + run.id + " is still owned by the live process " +
                               std::to_string(before.owner.pid) + "@" + before.owner.host +
                               "; wait for it to finish or stop it first");
    }
    nodes_.Bind(1, run.id);
    while (nodes_.Step(&s, "reading the nodes of run " + run.id)) {
      NodeFromRow(nodes_, &claimed.nodes.emplace_back());
    }
    nodes_.Reset();
    if (!s.ok()) return s;
    if (rerun != nullptr) {
      s = ResetForRerun(run, *rerun, &claimed.nodes);
      if (!s.ok()) return s;
    }
    claimed.epoch = before.epoch + 1;
    claim_run_.Bind(1, run.id)
        .Bind(2, run.workflow)
        .Bind(3, run.script_path)
        .Bind(4, run.script_sha256)
        .Bind(5, run.script_text)
        .Bind(6, run.owner.pid)
        .Bind(7, run.owner.host)
        .Bind(8, run.owner.start_ticks)
        .Bind(9, run.heartbeat)
        .Bind(10, run.updated_at)
        .Bind(11, run.node_count)
        .Bind(12, claimed.epoch)
        .Bind(13, expected_epoch);
    s = claim_run_.Run("claiming run " + run.id);
    if (s.ok() && sqlite3_changes(conn_->get()) != 1) {
      s = Status::Error(ErrorKind::kPermanent, "run " + run.id + " changed while being claimed");
    }
    if (s.ok()) s = versions_.RecordClaimed(before, run, &claimed);
    return s;
  });
  // The previous owner may have appended events this writer never saw.
  next_seq_.erase(run.id);
  if (!status.ok()) return status;
  held_epochs_[run.id] = claimed.epoch;
  return claimed;
}

Status SqliteWriter::ResetForRerun(const RunRecord& run, const Rerun& rerun,
                                   std::vector<NodeRecord>* nodes) {
  std::vector<std::string> records;
  records.reserve(nodes->size());
  for (const NodeRecord& node : *nodes) records.push_back(node.node);
  Status s = versions_.ResetForRerun(run.id, records, rerun.from, rerun.nodes, run.updated_at);
  if (!s.ok()) return s;
  nodes->clear();
  nodes_.Bind(1, run.id);
  while (nodes_.Step(&s, "reading the nodes of run " + run.id)) {
    NodeFromRow(nodes_, &nodes->emplace_back());
  }
  nodes_.Reset();
  return s;
}

Result<int64_t> SqliteWriter::DeleteFinishedBefore(double wall_time) {
  int64_t deleted = 0;
  Status status = InTransaction([&] {
    Status s = versions_.DeleteFinishedBefore(wall_time);
    if (s.ok()) s = delete_events_.Bind(1, wall_time).Run("deleting old events");
    if (s.ok()) s = delete_nodes_.Bind(1, wall_time).Run("deleting old nodes");
    if (s.ok()) s = delete_signals_.Bind(1, wall_time).Run("deleting old signals");
    if (s.ok()) s = delete_runs_.Bind(1, wall_time).Run("deleting old runs");
    if (s.ok()) deleted = sqlite3_changes(conn_->get());
    return s;
  });
  if (!status.ok()) return status;
  next_seq_.clear();
  // Best effort: when it fails the freed pages stay in the file, for the
  // next gc (or new rows) to use.
  if (deleted > 0) (void)ReclaimFreePages(conn_.get());
  return deleted;
}

Result<BreakerSnapshot> SqliteWriter::UpdateBreaker(
    const std::string& key, const std::function<void(BreakerSnapshot&)>& update, double now) {
  BreakerSnapshot snapshot;
  Status status = InTransaction("breaker " + key, [&] {
    Status s;
    get_breaker_.Bind(1, key);
    if (get_breaker_.Step(&s, "reading breaker " + key)) ReadBreaker(get_breaker_, 0, &snapshot);
    get_breaker_.Reset();
    if (!s.ok()) return s;
    update(snapshot);
    std::string window_json;
    put_breaker_.Bind(1, key).Bind(14, now);
    BindBreaker(&put_breaker_, 2, snapshot, &window_json);
    return put_breaker_.Run("writing breaker " + key);
  });
  if (!status.ok()) return status;
  return snapshot;
}

Result<int64_t> SqliteWriter::ResetBreakers(const std::string& key) {
  int64_t deleted = 0;
  Status status = InTransaction([&] {
    Status s = reset_breakers_.Bind(1, key).Run("resetting breakers");
    if (s.ok()) deleted = sqlite3_changes(conn_->get());
    return s;
  });
  if (!status.ok()) return status;
  return deleted;
}

}  // namespace keel::sqlite
