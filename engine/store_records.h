#pragma once
// The records a Store keeps and returns: runs and their script versions,
// node outcomes, events, listings, breaker rows, claims. Plain values; any
// thread.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/circuit_breaker.h"
#include "engine/node_status.h"
#include "engine/process_owner.h"
#include "engine/status.h"
#include "engine/usage.h"

namespace keel {

// One Lua module a run's script `require`d while it loaded.
struct ScriptModule {
  std::string name;    // as required: "util", "lib.text"
  std::string path;    // the file it was loaded from, absolute
  std::string sha256;  // hex, of `text`
  std::string text;
};

// One version of a run's script: the script and its modules as a run was
// created, or a resume found them changed. Versions are numbered 1, 2, ...
// per run and never overwritten.
struct ScriptVersion {
  int version = 1;
  double created_at = 0;  // wall seconds
  std::string script_path;
  std::string script_sha256;
  std::string script_text;
  std::vector<ScriptModule> modules;  // in the order they were first required
};

struct RunRecord {
  std::string id;
  std::string workflow;
  std::string script_path;    // absolute path
  std::string script_sha256;  // hex
  std::string script_text;
  std::string params_json = "{}";  // effective params: defaults overridden by -p
  RunStatus status = RunStatus::kRunning;
  Owner owner;
  double heartbeat = 0;    // wall seconds
  double created_at = 0;   // wall seconds
  double updated_at = 0;   // wall seconds
  double finished_at = 0;  // wall seconds; 0 while unfinished
  int node_count = 0;      // nodes in the workflow
  std::string error;       // why it failed, if it did
  int64_t epoch = 1;       // bumped by every claim (see Store::ClaimRun)
  // What the command line configured beyond params (provider overrides,
  // budgets, ...), a JSON object the CLI writes and reads (cli/run_config.h).
  // CreateRun and ClaimRun write it.
  std::string config_json = "{}";
  std::string forked_from;       // the run this one was forked from; "" if none
  std::string forked_from_node;  // the fork's --from node; "" when every node ran
  int script_version = 1;        // the ScriptVersion the run runs (or last ran) with
  // The modules of the script, written by CreateRun and ClaimRun into the
  // run's script version; GetRun leaves it empty (see GetScriptVersions).
  std::vector<ScriptModule> modules;
  // Seconds no process ran it: from each stop (the last heartbeat, the
  // interruption or the finish) to the resume that claimed it, summed.
  double idle_s = 0;
};

struct NodeRecord {
  std::string run_id;
  std::string node;
  NodeStatus status = NodeStatus::kPending;
  int attempts = 0;
  std::optional<std::string> output_json;  // set for succeeded/fallback
  ErrorKind error_kind = ErrorKind::kNone;
  std::string error_message;
  double started_at = 0;   // wall seconds; 0 if it never started
  double finished_at = 0;  // wall seconds; 0 while unfinished
  // The run's script version when the record was written (set by the store);
  // 0 for a record a fork copied from the run it was forked from.
  int script_version = 0;
};

struct EventRecord {
  std::string run_id;
  int64_t seq = 0;         // assigned by the store: 1, 2, ... per run
  double ts = 0;           // wall seconds
  std::string node;        // empty for run-level events
  std::string kind;        // "run_started", "node_started", "node_succeeded", ...
  std::string data_json = "{}";
};

// One row of `keel runs`.
struct RunListing {
  RunRecord run;  // script_text left empty
  int nodes_done = 0;  // nodes recorded succeeded, fallback or skipped
  Usage usage;         // what its LLM calls spent (engine/usage.h)
};

// One row of `keel breakers`.
struct BreakerRow {
  std::string key;
  BreakerSnapshot snapshot;
  double updated_at = 0;  // wall seconds
};

// What Store::ClaimRun read and took, all in one transaction.
struct ClaimedRun {
  RunRecord before;               // the run as it was before the claim
  std::vector<NodeRecord> nodes;  // its node records, in first-insert order
  int64_t epoch = 0;              // the epoch this store now holds for the run
  int script_version = 1;         // the script version the run runs with from now on
  // The files (script path, module paths) that differ from the run's last
  // version: changed, added or no longer required. Empty: none, and no new
  // version was added.
  std::vector<std::string> changed_files;
};

// What Store::CancelRun did.
enum class CancelOutcome {
  kCancelled,  // no live process owned the run: it is recorded cancelled now
  kRequested,  // its owner is alive and was asked to stop; it records the run cancelled
};

struct RunFilter {
  std::optional<RunStatus> status;
  int limit = 20;  // newest first; <= 0 means all
  std::string workflow;  // only runs of this workflow; empty: any
  // An exact run id: only runs listed after it, newest first (the next
  // page); empty: from the newest. A run id that does not exist lists none.
  std::string before;
  double since = 0;  // wall seconds: only runs created at or after it; 0: any
};

}  // namespace keel
