#include "cli/worker_node.h"

#include <unordered_map>

#include "engine/event_data.h"

namespace keel::cli {
namespace {

// Whether `name` is a record inside node `node`: a map item "node[3]" or an
// inner node of a call or loop "node/x", at any depth.
bool InsideNode(const std::string& name, const std::string& node) {
  return name.size() > node.size() && name.compare(0, node.size(), node) == 0 &&
         (name[node.size()] == '[' || name[node.size()] == '/');
}

NodeRun Failed(const RunRecord& run, const std::string& node, const std::string& message,
               double now) {
  NodeRun out;
  NodeRecord rec;
  rec.run_id = run.id;
  rec.node = node;
  rec.status = NodeStatus::kFailed;
  rec.error_kind = ErrorKind::kPermanent;
  rec.error_message = message;
  rec.started_at = now;
  rec.finished_at = now;
  out.records.push_back(rec);
  out.events.push_back({run.id, 0, now, node, "node_failed",
                        EventData()
                            .Add("seconds", 0.0)
                            .Add("attempts", 0)
                            .Add("kind", "permanent")
                            .Add("message", message)
                            .Done()});
  return out;
}

}  // namespace

NodeRun RunClaimedNode(Executor& executor, ClaimStore& store, const WorkflowSpec& workflow,
                       const std::vector<WorkflowSpec>& library, const RunRecord& run,
                       const std::string& node, const std::vector<NodeRecord>& records,
                       double now) {
  int target = workflow.Find(node);
  if (target < 0) {
    return Failed(run, node,
                  "workflow '" + workflow.name + "' of run " + run.id + " has no node '" + node +
                      "'",
                  now);
  }
  std::unordered_map<std::string, NodeRecord> earlier;
  for (const NodeRecord& rec : records) {
    if (InsideNode(rec.node, node)) earlier.emplace(rec.node, rec);
  }
  WorkflowSpec trimmed;
  trimmed.name = workflow.name;
  trimmed.where = workflow.where;
  trimmed.params = workflow.params;
  trimmed.retry_budget = workflow.retry_budget;
  trimmed.budget = workflow.budget;
  NodeSpec spec = workflow.nodes[target];
  spec.after.clear();
  for (const std::string& dep : workflow.nodes[target].after) {
    const NodeRecord* found = nullptr;
    for (const NodeRecord& rec : records) {
      if (rec.node == dep) found = &rec;
    }
    if (found == nullptr || !IsKeptOnResume(found->status)) continue;
    NodeSpec restored = workflow.nodes[workflow.Find(dep)];
    restored.after.clear();
    trimmed.nodes.push_back(std::move(restored));
    earlier.emplace(dep, *found);
    spec.after.push_back(dep);
  }
  if (spec.policy.join.kind == JoinPolicy::Kind::kQuorum &&
      spec.policy.join.quorum > static_cast<int>(spec.after.size())) {
    spec.policy.join.quorum = static_cast<int>(spec.after.size());
  }
  trimmed.nodes.push_back(std::move(spec));

  ExecutorOptions options;
  options.workers = 2;
  options.library = &library;
  options.hold_waits = false;
  RunOutcome outcome = executor.Run(trimmed, run.id, MakeJson(run.params_json), earlier, options);

  NodeRun out;
  std::vector<NodeRecord> written = store.TakeRecords();
  NodeRecord own;
  bool have_own = false;
  for (NodeRecord& rec : written) {
    if (rec.node == node) {
      own = std::move(rec);
      have_own = true;
    } else if (InsideNode(rec.node, node)) {
      out.records.push_back(std::move(rec));
    }
  }
  if (!have_own || !IsFinished(own.status)) {
    const NodeResult& result = outcome.results.back();
    own.run_id = run.id;
    own.node = node;
    own.status = IsFinished(result.status) ? result.status : NodeStatus::kFailed;
    if (result.output) own.output_json = *result.output;
    own.error_kind = result.error.kind();
    own.error_message = result.error.message();
    if (own.status == NodeStatus::kFailed && result.error.ok()) {
      own.error_kind = ErrorKind::kError;
      own.error_message = outcome.error;
    }
    own.finished_at = now;
  }
  out.records.push_back(std::move(own));
  out.events = store.TakeEvents();
  return out;
}

}  // namespace keel::cli
