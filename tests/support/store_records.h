#pragma once
// Sample records for store tests: a run owned by a process elsewhere,
// created at `created_at`; a queued run; a node (with an output when it
// succeeded); an event. Shared by the SQLite, PostgreSQL and conformance
// tests. Value functions; any thread.

#include <string>

#include "engine/store.h"

namespace keel::testing {

inline RunRecord MakeRun(const std::string& id, double created_at = 1) {
  RunRecord run;
  run.id = id;
  run.workflow = "wf";
  run.script_path = "/tmp/wf.lua";
  run.script_sha256 = "00";
  run.script_text = "return keel.workflow 'wf' {}";
  run.owner = {1, "elsewhere", 1};
  run.heartbeat = run.created_at = run.updated_at = created_at;
  run.node_count = 2;
  return run;
}

// A run `keel submit` or a schedule queued: no owner yet.
inline RunRecord QueuedRun(const std::string& id, double created_at = 1) {
  RunRecord run = MakeRun(id, created_at);
  run.status = RunStatus::kQueued;
  run.owner = Owner{};
  run.heartbeat = 0;
  return run;
}

inline NodeRecord MakeNode(const std::string& run_id, const std::string& name,
                           NodeStatus status = NodeStatus::kSucceeded) {
  NodeRecord node;
  node.run_id = run_id;
  node.node = name;
  node.status = status;
  node.attempts = 1;
  if (status == NodeStatus::kSucceeded) node.output_json = R"({"n":")" + name + R"("})";
  node.started_at = 1.5;
  node.finished_at = 2.5;
  return node;
}

inline EventRecord MakeEvent(const std::string& run_id, const std::string& kind,
                             const std::string& data = "{}", const std::string& node = "") {
  return EventRecord{run_id, 0, 3.0, node, kind, data};
}

}  // namespace keel::testing
