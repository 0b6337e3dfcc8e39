#include "store/sqlite/sqlite_versions.h"

#include <map>
#include <unordered_set>

#include "engine/rerun.h"

namespace keel::sqlite {
namespace {

constexpr char kSetCreated[] =
    "UPDATE runs SET config_json = ?2, forked_from = ?3, forked_from_node = ?4, "
    "script_version = 1 WHERE id = ?1";
constexpr char kSetClaimed[] =
    "UPDATE runs SET config_json = ?2, script_version = ?3 WHERE id = ?1";
constexpr char kInsertVersion[] =
    "INSERT INTO script_versions (run_id, version, created_at, script_path, script_sha256, "
    "script_text) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
constexpr char kInsertModule[] =
    "INSERT INTO script_modules (run_id, version, seq, name, path, sha256, text) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
constexpr char kLatestVersion[] =
    "SELECT version, script_sha256 FROM script_versions WHERE run_id = ?1 "
    "ORDER BY version DESC LIMIT 1";
constexpr char kLatestModules[] =
    "SELECT path, sha256 FROM script_modules WHERE run_id = ?1 AND version = ?2 ORDER BY seq";
constexpr char kResetNode[] =
    "UPDATE nodes SET status = ?3, output_json = NULL, error_kind = ?4, error_message = '', "
    "started_at = 0, finished_at = 0 WHERE run_id = ?1 AND node = ?2";
constexpr char kDeleteNode[] = "DELETE FROM nodes WHERE run_id = ?1 AND node = ?2";
constexpr char kAppendRerun[] =
    "INSERT INTO events (run_id, seq, ts, node, kind, data_json) "
    "SELECT ?1, COALESCE(MAX(seq), 0) + 1, ?2, '', ?3, ?4 FROM events WHERE run_id = ?1";
constexpr char kCopyNode[] =
    "INSERT INTO nodes (run_id, node, status, attempts, output_json, error_kind, error_message, "
    "started_at, finished_at, script_version) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 0)";
// The runs DeleteFinishedBefore deletes (store/sqlite/sqlite_writer.cc).
constexpr char kDeleteVersions[] =
    "DELETE FROM script_versions WHERE run_id IN (SELECT id FROM runs WHERE status NOT IN "
    "('running', 'interrupted', 'waiting', 'queued') AND finished_at < ?1)";
constexpr char kDeleteModules[] =
    "DELETE FROM script_modules WHERE run_id IN (SELECT id FROM runs WHERE status NOT IN "
    "('running', 'interrupted', 'waiting', 'queued') AND finished_at < ?1)";

constexpr char kVersions[] =
    "SELECT version, created_at, script_path, script_sha256, script_text FROM script_versions "
    "WHERE run_id = ?1 ORDER BY version";
constexpr char kModules[] =
    "SELECT version, name, path, sha256, text FROM script_modules WHERE run_id = ?1 "
    "ORDER BY version, seq";
constexpr char kRunScript[] =
    "SELECT created_at, script_path, script_sha256, script_text FROM runs WHERE id = ?1";

Status PrepareEach(Connection* conn,
                   std::initializer_list<std::pair<Statement*, const char*>> all) {
  for (const auto& [stmt, sql] : all) {
    Status status = stmt->Prepare(conn, sql);
    if (!status.ok()) return status;
  }
  return Status::Ok();
}

}  // namespace

Status VersionWriter::Prepare(Connection* conn) {
  conn_ = conn;
  return PrepareEach(conn, {{&set_created_, kSetCreated},
                            {&set_claimed_, kSetClaimed},
                            {&insert_version_, kInsertVersion},
                            {&insert_module_, kInsertModule},
                            {&latest_version_, kLatestVersion},
                            {&latest_modules_, kLatestModules},
                            {&reset_node_, kResetNode},
                            {&delete_node_, kDeleteNode},
                            {&append_rerun_, kAppendRerun},
                            {&copy_node_, kCopyNode},
                            {&delete_versions_, kDeleteVersions},
                            {&delete_modules_, kDeleteModules}});
}

Status VersionWriter::InsertVersion(const std::string& run_id, int version, double created_at,
                                    const std::string& path, const std::string& sha256,
                                    const std::string& text,
                                    const std::vector<ScriptModule>& modules) {
  insert_version_.Bind(1, run_id)
      .Bind(2, version)
      .Bind(3, created_at)
      .Bind(4, path)
      .Bind(5, sha256)
      .Bind(6, text);
  Status status = insert_version_.Run("recording script version " + std::to_string(version) +
                                      " of run " + run_id);
  for (size_t i = 0; status.ok() && i < modules.size(); ++i) {
    const ScriptModule& m = modules[i];
    insert_module_.Bind(1, run_id)
        .Bind(2, version)
        .Bind(3, static_cast<int64_t>(i))
        .Bind(4, m.name)
        .Bind(5, m.path)
        .Bind(6, m.sha256)
        .Bind(7, m.text);
    status = insert_module_.Run("recording module " + m.path + " of run " + run_id);
  }
  return status;
}

Status VersionWriter::RecordCreated(const RunRecord& run) {
  set_created_.Bind(1, run.id)
      .Bind(2, run.config_json)
      .Bind(3, run.forked_from)
      .Bind(4, run.forked_from_node);
  Status status = set_created_.Run("recording the configuration of run " + run.id);
  if (status.ok()) {
    status = InsertVersion(run.id, 1, run.created_at, run.script_path, run.script_sha256,
                           run.script_text, run.modules);
  }
  if (status.ok()) held_[run.id] = 1;
  return status;
}

Status VersionWriter::RecordClaimed(const RunRecord& before, const RunRecord& run,
                                    ClaimedRun* claimed) {
  Status status;
  latest_version_.Bind(1, run.id);
  bool found = latest_version_.Step(&status, "reading the script versions of run " + run.id);
  int latest = found ? static_cast<int>(latest_version_.Int(0)) : 0;
  std::string latest_sha = found ? latest_version_.Text(1) : "";
  latest_version_.Reset();
  if (!status.ok()) return status;

  std::vector<std::string> changed;
  if (!found) {
    // Recorded before versions were kept: its run record is version 1. Its
    // modules are unknown, so only the script itself can be compared.
    bool same = before.script_sha256 == run.script_sha256;
    status = InsertVersion(run.id, 1, before.created_at, before.script_path, before.script_sha256,
                           before.script_text, same ? run.modules : std::vector<ScriptModule>{});
    latest = 1;
    if (!same) changed.push_back(run.script_path);
  } else {
    if (latest_sha != run.script_sha256) changed.push_back(run.script_path);
    std::map<std::string, std::string> old_modules;  // path -> sha256
    latest_modules_.Bind(1, run.id).Bind(2, latest);
    while (latest_modules_.Step(&status, "reading the modules of run " + run.id)) {
      old_modules[latest_modules_.Text(0)] = latest_modules_.Text(1);
    }
    latest_modules_.Reset();
    if (!status.ok()) return status;
    for (const ScriptModule& m : run.modules) {
      auto it = old_modules.find(m.path);
      if (it == old_modules.end() || it->second != m.sha256) changed.push_back(m.path);
      if (it != old_modules.end()) old_modules.erase(it);
    }
    for (const auto& [path, sha] : old_modules) changed.push_back(path);  // no longer required
  }
  if (status.ok() && !changed.empty()) {
    ++latest;
    status = InsertVersion(run.id, latest, run.updated_at, run.script_path, run.script_sha256,
                           run.script_text, run.modules);
  }
  if (!status.ok()) return status;
  set_claimed_.Bind(1, run.id).Bind(2, run.config_json).Bind(3, latest);
  status = set_claimed_.Run("recording the configuration of run " + run.id);
  if (!status.ok()) return status;
  claimed->script_version = latest;
  claimed->changed_files = std::move(changed);
  held_[run.id] = latest;
  return Status::Ok();
}

Status VersionWriter::ResetForRerun(const std::string& run_id,
                                    const std::vector<std::string>& records,
                                    const std::string& from, const std::vector<std::string>& rerun,
                                    double now) {
  const std::unordered_set<std::string> named(rerun.begin(), rerun.end());
  Status status;
  for (const std::string& record : records) {
    if (named.count(record)) {
      reset_node_.Bind(1, run_id)
          .Bind(2, record)
          .Bind(3, NodeStatusName(NodeStatus::kPending))
          .Bind(4, ErrorKindName(ErrorKind::kNone));
      status = reset_node_.Run("resetting node '" + record + "' of run " + run_id);
    } else if (RecordOfAny(record, named)) {
      delete_node_.Bind(1, run_id).Bind(2, record);
      status = delete_node_.Run("dropping node '" + record + "' of run " + run_id);
    }
    if (!status.ok()) return status;
  }
  const std::string data = RerunEventData(from, rerun);
  append_rerun_.Bind(1, run_id).Bind(2, now).Bind(3, kRerunEventKind).Bind(4, data);
  return append_rerun_.Run("recording the rerun of run " + run_id);
}

Status VersionWriter::CopyNodes(const std::string& run_id, const std::vector<NodeRecord>& kept) {
  for (const NodeRecord& node : kept) {
    copy_node_.Bind(1, run_id)
        .Bind(2, node.node)
        .Bind(3, NodeStatusName(node.status))
        .Bind(4, node.attempts)
        .Bind(6, ErrorKindName(node.error_kind))
        .Bind(7, node.error_message)
        .Bind(8, node.started_at)
        .Bind(9, node.finished_at);
    if (node.output_json) {
      copy_node_.Bind(5, *node.output_json);
    } else {
      copy_node_.BindNull(5);
    }
    Status status = copy_node_.Run("copying node '" + node.node + "' into run " + run_id);
    if (!status.ok()) return status;
  }
  return Status::Ok();
}

Status VersionWriter::DeleteFinishedBefore(double wall_time) {
  Status status = delete_modules_.Bind(1, wall_time).Run("deleting old script modules");
  if (status.ok()) status = delete_versions_.Bind(1, wall_time).Run("deleting old script versions");
  return status;
}

std::optional<int> VersionWriter::HeldVersion(const std::string& run_id) const {
  auto it = held_.find(run_id);
  if (it == held_.end()) return std::nullopt;
  return it->second;
}

Status VersionReader::Prepare(Connection* conn) {
  conn_ = conn;
  return PrepareEach(conn,
                     {{&versions_, kVersions}, {&modules_, kModules}, {&run_script_, kRunScript}});
}

Result<std::vector<ScriptVersion>> VersionReader::Get(const std::string& run_id) {
  std::vector<ScriptVersion> versions;
  Status status;
  versions_.Bind(1, run_id);
  while (versions_.Step(&status, "reading the script versions of run " + run_id)) {
    ScriptVersion& v = versions.emplace_back();
    v.version = static_cast<int>(versions_.Int(0));
    v.created_at = versions_.Real(1);
    v.script_path = versions_.Text(2);
    v.script_sha256 = versions_.Text(3);
    v.script_text = versions_.Text(4);
  }
  versions_.Reset();
  if (!status.ok()) return status;
  if (versions.empty()) {
    run_script_.Bind(1, run_id);
    bool found = run_script_.Step(&status, "reading run " + run_id);
    if (found) {
      ScriptVersion& v = versions.emplace_back();
      v.created_at = run_script_.Real(0);
      v.script_path = run_script_.Text(1);
      v.script_sha256 = run_script_.Text(2);
      v.script_text = run_script_.Text(3);
    }
    run_script_.Reset();
    if (!status.ok()) return status;
    if (!found) {
      return Status::Error(ErrorKind::kPermanent, "no run '" + run_id + "' in " + conn_->path());
    }
    return versions;
  }
  modules_.Bind(1, run_id);
  while (modules_.Step(&status, "reading the script modules of run " + run_id)) {
    int version = static_cast<int>(modules_.Int(0));
    for (ScriptVersion& v : versions) {
      if (v.version != version) continue;
      v.modules.push_back({modules_.Text(1), modules_.Text(2), modules_.Text(3), modules_.Text(4)});
      break;
    }
  }
  modules_.Reset();
  if (!status.ok()) return status;
  return versions;
}

}  // namespace keel::sqlite
