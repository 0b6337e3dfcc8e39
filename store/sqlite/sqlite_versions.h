#pragma once
// The SQLite store's statements for a run's configuration and script
// versions (schema version 6): the config and fork columns of `runs`, the
// `script_versions` and `script_modules` tables, the record resets of
// `keel resume --from` and the node copies of `keel fork`.
//
// VersionWriter works inside the transactions of SqliteWriter, on its
// connection; VersionReader beside SqliteReader, on its. Neither is
// thread-safe: each belongs to its connection's single user.

#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "store/sqlite/sqlite_util.h"
#include "engine/store.h"

namespace keel::sqlite {

class VersionWriter {
 public:
  Status Prepare(Connection* conn);

  // After run `run` was inserted: its config and fork columns, and its
  // script version 1 with `run.modules`.
  Status RecordCreated(const RunRecord& run);

  // After run `run` was claimed from what it was (`before`): its config, and
  // a new script version when the script or its modules differ from the
  // latest one. Sets claimed->script_version and claimed->changed_files.
  Status RecordClaimed(const RunRecord& before, const RunRecord& run, ClaimedRun* claimed);

  // `keel resume --from`: `records` are the names of the run's node records;
  // those of `rerun` go back to pending, those of their inner nodes are
  // deleted, and a rerun event (engine/rerun.h) is appended at `now`.
  Status ResetForRerun(const std::string& run_id, const std::vector<std::string>& records,
                       const std::string& from, const std::vector<std::string>& rerun, double now);

  // `keel fork`: inserts copies of `kept` as records of run `run_id`.
  Status CopyNodes(const std::string& run_id, const std::vector<NodeRecord>& kept);

  // Deletes the versions of the runs DeleteFinishedBefore is about to delete.
  Status DeleteFinishedBefore(double wall_time);

  // The version node records of `run_id` are written with, once this writer
  // created or claimed the run.
  std::optional<int> HeldVersion(const std::string& run_id) const;

 private:
  Status InsertVersion(const std::string& run_id, int version, double created_at,
                       const std::string& path, const std::string& sha256, const std::string& text,
                       const std::vector<ScriptModule>& modules);

  Connection* conn_ = nullptr;
  std::unordered_map<std::string, int> held_;
  Statement set_created_;
  Statement set_claimed_;
  Statement insert_version_;
  Statement insert_module_;
  Statement latest_version_;
  Statement latest_modules_;
  Statement reset_node_;
  Statement delete_node_;
  Statement append_rerun_;
  Statement copy_node_;
  Statement delete_versions_;
  Statement delete_modules_;
};

class VersionReader {
 public:
  Status Prepare(Connection* conn);
  // See Store::GetScriptVersions.
  Result<std::vector<ScriptVersion>> Get(const std::string& run_id);

 private:
  Connection* conn_ = nullptr;
  Statement versions_;
  Statement modules_;
  Statement run_script_;
};

}  // namespace keel::sqlite
