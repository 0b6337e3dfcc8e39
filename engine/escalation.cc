#include "engine/escalation.h"

#include <algorithm>
#include <string_view>

#include "engine/did_you_mean.h"
#include "engine/dynamic_node.h"
#include "engine/event_data.h"
#include "engine/run_state.h"

namespace keel {
namespace {

constexpr char kPrefixName[] = "on_failure";

// {node, kind, message, attempts} of node i of `outcome`.
EventData& AddNodeFailure(EventData& data, const WorkflowSpec& workflow, const RunOutcome& outcome,
                          size_t i) {
  const Status& error = outcome.results[i].error;
  return data.Add("node", workflow.nodes[i].name)
      .Add("kind", ErrorKindName(error.kind()))
      .Add("message", error.message())
      .Add("attempts", i < outcome.attempts.size() ? outcome.attempts[i] : 0);
}

// Records a run-level event of the escalation and tells the observer.
void Record(RunEnv* env, const std::string& run_id, const char* kind, std::string data) {
  double now = env->clock->WallNow();
  if (env->observer) env->observer->OnEvent("", kind, data, now);
  if (env->store) env->store->AppendEvent({run_id, 0, now, "", kind, std::move(data)});
}

}  // namespace

std::string EscalationPrefix(int number) {
  return std::string(kPrefixName) + "#" + std::to_string(number) + "/";
}

const WorkflowSpec* EscalationTarget(const WorkflowSpec& workflow, const RunOutcome& outcome,
                                     bool stopped, const std::vector<WorkflowSpec>* library) {
  if (workflow.on_failure.empty() || outcome.status != RunStatus::kFailed || stopped ||
      library == nullptr) {
    return nullptr;
  }
  for (const WorkflowSpec& candidate : *library) {
    if (candidate.name == workflow.on_failure) return &candidate;
  }
  return nullptr;
}

JsonText EscalationFailure(const std::string& run_id, const WorkflowSpec& workflow,
                           const RunOutcome& outcome, int number) {
  EventData data;
  data.Add("run_id", run_id)
      .Add("workflow", workflow.name)
      .Add("escalation", number)
      .Add("error", outcome.error);
  const size_t n = std::min(workflow.nodes.size(), outcome.results.size());
  if (outcome.failed_node >= 0 && static_cast<size_t>(outcome.failed_node) < n) {
    AddNodeFailure(data, workflow, outcome, static_cast<size_t>(outcome.failed_node));
  }
  std::string failed = "[";
  for (size_t i = 0; i < n; ++i) {
    if (outcome.results[i].status != NodeStatus::kFailed) continue;
    EventData node;
    if (failed.size() > 1) failed += ',';
    failed += AddNodeFailure(node, workflow, outcome, i).Done();
  }
  failed += ']';
  data.AddRaw("failed", failed);
  return MakeJson(data.Done());
}

RunOutcome RecordedOutcome(const WorkflowSpec& workflow, const std::vector<NodeRecord>& records,
                           const std::string& error, int failed_node) {
  RunOutcome out;
  out.status = RunStatus::kFailed;
  out.error = error;
  out.failed_node = failed_node;
  out.results.assign(workflow.nodes.size(),
                     NodeResult{NodeStatus::kPending, nullptr, Status::Ok()});
  out.attempts.assign(workflow.nodes.size(), 0);
  for (const NodeRecord& rec : records) {
    int i = workflow.Find(rec.node);
    if (i < 0) continue;
    NodeResult& result = out.results[static_cast<size_t>(i)];
    result.status = rec.status;
    if (rec.error_kind != ErrorKind::kNone) {
      result.error = Status::Error(rec.error_kind, rec.error_message);
    }
    out.attempts[static_cast<size_t>(i)] = rec.attempts;
  }
  return out;
}

std::unique_ptr<RunState> MakeEscalation(RunEnv* env, const WorkflowSpec& target,
                                         const std::string& run_id, const JsonText& params,
                                         int number, JsonText failure) {
  auto state =
      std::make_unique<RunState>(target, run_id, MergeJsonObjects(target.params, params), env, 0,
                                 "", std::vector<std::pair<std::string, JsonText>>{}, nullptr);
  state->SetFrame(EscalationPrefix(number), nullptr, 0);
  state->SetFailure(std::move(failure));
  return state;
}

RunOutcome RunEscalation(RunEnv* env, RunState* escalation, const std::string& target,
                         const std::string& run_id, int number, const std::string& error,
                         const std::function<void()>& wait) {
  Record(env, run_id, "escalation_started",
         EventData().Add("workflow", target).Add("escalation", number).Add("error", error).Done());
  // Fresh records: an earlier escalation's are under another number.
  std::vector<int> ready = escalation->Prepare({});
  env->escalation.store(escalation, std::memory_order_release);
  for (int i : ready) env->launch(escalation, i);
  wait();
  RunOutcome ended = escalation->Outcome();
  EventData finished;
  finished.Add("workflow", target)
      .Add("escalation", number)
      .Add("status", RunStatusName(ended.status));
  if (!ended.error.empty()) finished.Add("error", ended.error);
  Record(env, run_id, "escalation_finished", finished.Done());
  return ended;
}

std::vector<Diagnostic> ValidateEscalations(const std::vector<WorkflowSpec>& workflows) {
  std::vector<Diagnostic> out;
  std::vector<std::string_view> names;
  for (const WorkflowSpec& workflow : workflows) names.push_back(workflow.name);
  for (const WorkflowSpec& workflow : workflows) {
    const std::string& to = workflow.on_failure;
    if (to.empty()) continue;
    const std::string head = "workflow '" + workflow.name + "': ";
    if (to == workflow.name) {
      out.push_back({workflow.where, "",
                     head + "on_failure names the workflow itself; name another workflow to "
                            "run when it fails"});
      continue;
    }
    auto found = std::find_if(workflows.begin(), workflows.end(),
                              [&to](const WorkflowSpec& w) { return w.name == to; });
    if (found == workflows.end()) {
      out.push_back({workflow.where, "",
                     head + "on_failure '" + to + "' is not a workflow declared in this file" +
                         DidYouMean(to, names, std::max<size_t>(2, to.size() / 3))});
      continue;
    }
    for (const NodeSpec& node : found->nodes) {
      if (node.wait) {
        out.push_back({node.where, node.name,
                       "workflow '" + to + "' is the on_failure of '" + workflow.name +
                           "' and cannot wait: an escalation runs to its end at once"});
      }
    }
    int reserved = workflow.Find(kPrefixName);
    if (reserved >= 0) {
      out.push_back({workflow.nodes[reserved].where, kPrefixName,
                     "the name 'on_failure' is kept for the records of the escalation of "
                     "workflow '" + workflow.name + "' (on_failure#1/...); rename the node"});
    }
  }
  return out;
}

}  // namespace keel
