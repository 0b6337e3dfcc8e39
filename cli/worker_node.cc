#include "cli/worker_node.h"

#include <atomic>
#include <memory>
#include <unordered_map>

#include "engine/event_data.h"

namespace keel::cli {
namespace {

// Stands in for a dependency that did not finish with an output: one
// recorded failed or cancelled ends so again at once, one still running
// elsewhere (a join going ahead without it) ends only when the executor
// gives it up. Its records and events are not committed.
class StandInBody : public NodeBody {
 public:
  explicit StandInBody(const NodeRecord* recorded) {
    if (recorded != nullptr) {
      finished_ = true;
      result_ = NodeResult{recorded->status, nullptr,
                           Status::Error(recorded->error_kind == ErrorKind::kNone
                                             ? ErrorKind::kError
                                             : recorded->error_kind,
                                         recorded->error_message)};
    }
  }
  void Start(const NodeContext& ctx, NodeCompletion done) override {
    if (finished_) return done(result_);
    auto once = std::make_shared<NodeCompletion>(std::move(done));
    auto fired = std::make_shared<std::atomic<bool>>(false);
    ctx.cancel->Subscribe([once, fired] {
      if (!fired->exchange(true)) {
        (*once)(NodeResult{NodeStatus::kCancelled, nullptr,
                           Status::Error(ErrorKind::kCancelled, "not needed")});
      }
    });
  }

 private:
  bool finished_ = false;
  NodeResult result_;
};

}  // namespace

NodeRun FailedNode(const RunRecord& run, const std::string& node, const std::string& message,
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

NodeRun RunClaimedNode(Executor& executor, ClaimStore& store, ArenaPool* arenas,
                       const WorkflowSpec& workflow, const std::vector<WorkflowSpec>& library,
                       const RunRecord& run, const std::string& node,
                       const std::vector<NodeRecord>& records, const RunHistory& history,
                       double now) {
  int target = workflow.Find(node);
  if (target < 0) {
    return FailedNode(run, node,
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
  // No on_failure: the step that settles the run failed makes its
  // escalation due for any worker (store/postgres/pg_escalations.h).
  NodeSpec spec = workflow.nodes[target];
  spec.after.clear();
  for (const std::string& dep : workflow.nodes[target].after) {
    const NodeRecord* found = nullptr;
    for (const NodeRecord& rec : records) {
      if (rec.node == dep) found = &rec;
    }
    const NodeSpec& original = workflow.nodes[workflow.Find(dep)];
    if (found != nullptr && IsKeptOnResume(found->status)) {
      NodeSpec restored = original;
      restored.after.clear();
      trimmed.nodes.push_back(std::move(restored));
      earlier.emplace(dep, *found);
    } else {
      NodeSpec stand_in;
      stand_in.name = original.name;
      stand_in.kind = original.kind;
      stand_in.optional = original.optional;
      stand_in.where = original.where;
      stand_in.body = std::make_shared<StandInBody>(
          found != nullptr && IsFinished(found->status) && found->status != NodeStatus::kWaiting
              ? found
              : nullptr);
      trimmed.nodes.push_back(std::move(stand_in));
    }
    spec.after.push_back(dep);
  }
  trimmed.nodes.push_back(std::move(spec));

  ExecutorOptions options;
  // The calling thread: a worker runs many nodes at once, each on its own
  // thread, in an arena of one slot it reuses.
  options.arenas = arenas;
  options.library = &library;
  options.hold_waits = false;
  RunOutcome outcome =
      executor.Run(trimmed, run.id, MakeJson(run.params_json), earlier, options, history);

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
  for (EventRecord& e : store.TakeEvents()) {
    if (e.node.empty() || e.node == node || InsideNode(e.node, node)) {
      out.events.push_back(std::move(e));
    }
  }
  return out;
}

}  // namespace keel::cli
