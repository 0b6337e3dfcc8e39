// PgWriter's synchronous writes: creating, forking and claiming runs
// (with their script versions and `keel resume --from` resets), and gc.
// Mirrors store/sqlite/sqlite_writer.cc and sqlite_versions.cc; the run row
// is locked FOR UPDATE first, so two processes claiming one run at once are
// ordered and the second is refused.

#include <map>
#include <unordered_set>

#include "engine/rerun.h"
#include "store/postgres/pg_rows.h"
#include "store/postgres/pg_writer.h"

namespace keel::pg {
namespace {

constexpr char kClaimRun[] =
    "UPDATE runs SET workflow = $2, script_path = $3, script_sha256 = $4, script_text = $5, "
    "status = 'running', owner_pid = $6, owner_host = $7, owner_start = $8, heartbeat = $9, "
    "updated_at = $10::double precision, finished_at = 0, error = '', node_count = $11, "
    "epoch = $12, config_json = $14, "
    "idle_s = idle_s + GREATEST(0, $10::double precision - GREATEST(heartbeat, updated_at, "
    "finished_at, COALESCE((SELECT MAX(GREATEST(started_at, finished_at)) FROM nodes "
    "WHERE run_id = $1), 0))) "
    "WHERE id = $1 AND epoch = $13";
constexpr char kInsertVersion[] =
    "INSERT INTO script_versions (run_id, version, created_at, script_path, script_sha256, "
    "script_text) VALUES ($1, $2, $3, $4, $5, $6)";
constexpr char kInsertModule[] =
    "INSERT INTO script_modules (run_id, version, seq, name, path, sha256, text) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7)";
constexpr char kResetNode[] =
    "UPDATE nodes SET status = $3, output_json = NULL, error_kind = $4, error_message = '', "
    "started_at = 0, finished_at = 0 WHERE run_id = $1 AND node = $2";
constexpr char kDeleteNode[] = "DELETE FROM nodes WHERE run_id = $1 AND node = $2";
#define KEEL_FINISHED "SELECT id FROM runs WHERE status NOT IN ('running', 'interrupted', " \
                      "'waiting', 'queued') AND finished_at < $1"
constexpr const char* kDeleteFinished[] = {
    "DELETE FROM script_modules WHERE run_id IN (" KEEL_FINISHED ")",
    "DELETE FROM script_versions WHERE run_id IN (" KEEL_FINISHED ")",
    "DELETE FROM events WHERE run_id IN (" KEEL_FINISHED ")",
    "DELETE FROM nodes WHERE run_id IN (" KEEL_FINISHED ")",
    "DELETE FROM signals WHERE run_id IN (" KEEL_FINISHED ")",
    "DELETE FROM escalations WHERE run_id IN (" KEEL_FINISHED ")",
    "DELETE FROM node_queue WHERE run_id IN (" KEEL_FINISHED ")",
    "DELETE FROM claim_log WHERE run_id IN (" KEEL_FINISHED ")",
    "DELETE FROM runs WHERE id IN (" KEEL_FINISHED ")",
};
#undef KEEL_FINISHED

std::vector<Statement> VersionRows(const std::string& run_id, int version, double created_at,
                                   const std::string& path, const std::string& sha256,
                                   const std::string& text,
                                   const std::vector<ScriptModule>& modules) {
  std::vector<Statement> rows;
  rows.push_back({kInsertVersion, {run_id, Num(version), Num(created_at), path, sha256, text}});
  for (size_t i = 0; i < modules.size(); ++i) {
    const ScriptModule& m = modules[i];
    rows.push_back({kInsertModule,
                    {run_id, Num(version), Num(static_cast<int64_t>(i)), m.name, m.path, m.sha256,
                     m.text}});
  }
  return rows;
}

Status Run(Connection& conn, const std::vector<Statement>& statements, std::string_view what) {
  if (statements.empty()) return Status::Ok();
  auto done = conn.Pipeline(statements, what);
  return done.ok() ? Status::Ok() : done.status();
}

}  // namespace

Status PgWriter::CreateRun(const RunRecord& run, const std::vector<NodeRecord>& kept) {
  Status created = conn_->Transaction(
      [&](Connection& c) { return InsertRun(c, run, kept); }, "creating run " + run.id);
  if (created.ok()) held_[run.id] = Held{1, 1};
  return created;
}

Result<ClaimedRun> PgWriter::ClaimRun(const RunRecord& run, int64_t expected_epoch,
                                      const std::function<bool(const Owner&, double)>& owner_alive,
                                      const Rerun* rerun) {
  if (Status text = CheckRunText(run); !text.ok()) return text;
  ClaimedRun claimed;
  Status status = conn_->Transaction(
      [&](Connection& c) -> Status {
        claimed = ClaimedRun();
        auto row = c.Exec(std::string("SELECT ") + kRunColumns +
                              ", cancel_requested FROM runs WHERE id = $1 FOR UPDATE",
                          {run.id}, "reading run " + run.id);
        if (!row.ok()) return row.status();
        if (row->size() == 0) {
          return Status::Error(ErrorKind::kPermanent, "no run '" + run.id + "' in " + c.name());
        }
        RunFromRow(*row, 0, &claimed.before);
        const RunRecord& before = claimed.before;
        const double cancel_requested = row->real(0, 22);
        if (before.status == RunStatus::kSucceeded && rerun == nullptr) {
          return Status::Error(ErrorKind::kPermanent,
                               "run " + run.id + " already succeeded; nothing to resume");
        }
        if (before.status == RunStatus::kCancelled) {
          return Status::Error(ErrorKind::kPermanent, "run " + run.id +
                                                          " was cancelled; a cancelled run "
                                                          "cannot be resumed");
        }
        if (cancel_requested > 0) {
          return Status::Error(ErrorKind::kPermanent,
                               "run " + run.id + " was asked to cancel; it cannot be resumed (`keel "
                                                 "cancel " + run.id + "` records it cancelled)");
        }
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
        const std::string nodes_sql = std::string("SELECT ") + kNodeColumns +
                                      " FROM nodes WHERE run_id = $1 ORDER BY ord";
        auto nodes = ReadRows<NodeRecord>(c, nodes_sql, {run.id}, "reading the nodes of run " + run.id,
                                          [](const Rows& r, int i, NodeRecord* n) { NodeFromRow(r, i, n); });
        if (!nodes.ok()) return nodes.status();
        claimed.nodes = std::move(nodes).value();
        if (rerun != nullptr) {
          Status s = ResetForRerun(run, *rerun, &claimed.nodes);
          if (!s.ok()) return s;
          nodes = ReadRows<NodeRecord>(c, nodes_sql, {run.id}, "reading the nodes of run " + run.id,
                                       [](const Rows& r, int i, NodeRecord* n) { NodeFromRow(r, i, n); });
          if (!nodes.ok()) return nodes.status();
          claimed.nodes = std::move(nodes).value();
        }
        claimed.epoch = before.epoch + 1;
        auto updated = c.Exec(kClaimRun,
                              {run.id, run.workflow, run.script_path, run.script_sha256,
                               run.script_text, Num(run.owner.pid), run.owner.host,
                               Num(run.owner.start_ticks), Num(run.heartbeat), Num(run.updated_at),
                               Num(run.node_count), Num(claimed.epoch), Num(expected_epoch),
                               run.config_json},
                              "claiming run " + run.id);
        if (!updated.ok()) return updated.status();
        if (updated->affected() != 1) {
          return Status::Error(ErrorKind::kPermanent, "run " + run.id + " changed while being claimed");
        }
        return RecordClaimed(before, run, &claimed);
      },
      "claiming run " + run.id);
  if (!status.ok()) return status;
  held_[run.id] = Held{claimed.epoch, claimed.script_version};
  return claimed;
}

Status PgWriter::RecordClaimed(const RunRecord& before, const RunRecord& run, ClaimedRun* claimed) {
  Connection& c = *conn_;
  auto latest_row = c.Exec("SELECT version, script_sha256 FROM script_versions WHERE run_id = $1 "
                           "ORDER BY version DESC LIMIT 1",
                           {run.id}, "reading the script versions of run " + run.id);
  if (!latest_row.ok()) return latest_row.status();
  std::vector<std::string> changed;
  std::vector<Statement> rows;
  int latest = 0;
  if (latest_row->size() == 0) {
    // No versions kept: its run record is version 1, modules unknown.
    bool same = before.script_sha256 == run.script_sha256;
    rows = VersionRows(run.id, 1, before.created_at, before.script_path, before.script_sha256,
                       before.script_text, same ? run.modules : std::vector<ScriptModule>{});
    latest = 1;
    if (!same) changed.push_back(run.script_path);
  } else {
    latest = static_cast<int>(latest_row->int64(0, 0));
    if (latest_row->str(0, 1) != run.script_sha256) changed.push_back(run.script_path);
    auto modules = c.Exec("SELECT path, sha256 FROM script_modules WHERE run_id = $1 AND "
                          "version = $2 ORDER BY seq",
                          {run.id, Num(latest)}, "reading the modules of run " + run.id);
    if (!modules.ok()) return modules.status();
    std::map<std::string, std::string> old_modules;  // path -> sha256
    for (int i = 0; i < modules->size(); ++i) old_modules[modules->str(i, 0)] = modules->str(i, 1);
    for (const ScriptModule& m : run.modules) {
      auto it = old_modules.find(m.path);
      if (it == old_modules.end() || it->second != m.sha256) changed.push_back(m.path);
      if (it != old_modules.end()) old_modules.erase(it);
    }
    for (const auto& [path, sha] : old_modules) changed.push_back(path);  // no longer required
  }
  if (!changed.empty()) {
    ++latest;
    auto more = VersionRows(run.id, latest, run.updated_at, run.script_path, run.script_sha256,
                            run.script_text, run.modules);
    rows.insert(rows.end(), more.begin(), more.end());
  }
  rows.push_back({"UPDATE runs SET script_version = $2 WHERE id = $1", {run.id, Num(latest)}});
  Status s = Run(c, rows, "recording the script version of run " + run.id);
  if (!s.ok()) return s;
  claimed->script_version = latest;
  claimed->changed_files = std::move(changed);
  return Status::Ok();
}

Status PgWriter::ResetForRerun(const RunRecord& run, const Rerun& rerun,
                               std::vector<NodeRecord>* nodes) {
  const std::unordered_set<std::string> named(rerun.nodes.begin(), rerun.nodes.end());
  std::vector<Statement> rows;
  for (const NodeRecord& record : *nodes) {
    if (named.count(record.node)) {
      rows.push_back({kResetNode,
                      {run.id, record.node, std::string(NodeStatusName(NodeStatus::kPending)),
                       std::string(ErrorKindName(ErrorKind::kNone))}});
    } else if (RecordOfAny(record.node, named)) {
      rows.push_back({kDeleteNode, {run.id, record.node}});
    }
  }
  Status s = Run(*conn_, rows, "resetting the nodes of run " + run.id);
  if (!s.ok()) return s;
  std::vector<EventRecord> events(1);
  events[0].run_id = run.id;
  events[0].ts = run.updated_at;
  events[0].kind = kRerunEventKind;
  events[0].data_json = RerunEventData(rerun.from, rerun.nodes);
  return InsertEvents(*conn_, &events);
}

Result<int64_t> PgWriter::DeleteFinishedBefore(double wall_time) {
  int64_t deleted = 0;
  Status status = conn_->Transaction(
      [&](Connection& c) -> Status {
        std::vector<Statement> rows;
        for (const char* sql : kDeleteFinished) rows.push_back({sql, {Num(wall_time)}});
        auto done = c.Pipeline(rows, "deleting finished runs");
        if (!done.ok()) return done.status();
        deleted = done->back().affected();
        return Status::Ok();
      },
      "deleting finished runs");
  if (!status.ok()) return status;
  return deleted;
}

}  // namespace keel::pg
