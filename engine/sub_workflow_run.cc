// SubWorkflowRun: a keel.call's workflow, recorded as `c/name`, or a
// keel.loop's iterations, recorded as `r#1/name`, `r#2/name`, ...

#include <algorithm>

#include "engine/dynamic_run.h"
#include "engine/event_data.h"

namespace keel {
namespace {

const std::unordered_map<std::string, NodeRecord>& Earlier(const RunEnv* env) {
  static const std::unordered_map<std::string, NodeRecord> kNone;
  return env->earlier ? *env->earlier : kNone;
}

bool Truthy(const JsonText& value) { return value && *value != "null" && *value != "false"; }

}  // namespace

SubWorkflowRun::SubWorkflowRun(RunState* parent, int node, const WorkflowSpec* workflow,
                               JsonText value)
    : parent_(parent),
      node_(node),
      dyn_(*parent->wf_.nodes[node].dynamic),
      workflow_(workflow),
      value_(std::move(value)) {}

void SubWorkflowRun::Begin() { StartIteration(1, nullptr); }

void SubWorkflowRun::StartIteration(int iteration, JsonText previous) {
  RunEnv* env = parent_->env_;
  const bool loop = dyn_.kind == DynamicNode::Kind::kLoop;
  std::string name = parent_->RecordName(node_);
  std::string prefix = loop ? name + "#" + std::to_string(iteration) + "/" : name + "/";
  if (std::count(prefix.begin(), prefix.end(), '/') > kMaxCallDepth) {
    parent_->Finish(
        node_, NodeResult::Failure(Status::Error(ErrorKind::kPermanent,
                                                 parent_->wf_.nodes[node_].where + ": '" + name +
                                                     "': workflows nest deeper than " +
                                                     std::to_string(kMaxCallDepth) + " calls")));
    return;
  }
  JsonText params;
  if (loop) {
    parent_->Emit(node_, "loop_iteration", EventData().Add("iteration", iteration).Done());
    // The first iteration has no `previous` (absent, so nil in Lua).
    std::string given = "{\"iteration\":" + std::to_string(iteration) +
                        (previous ? ",\"previous\":" + *previous : std::string()) + "}";
    params = MergeJsonObjects(workflow_->params, MakeJson(std::move(given)));
  } else {
    params = MergeJsonObjects(workflow_->params, value_);
  }
  auto child = std::make_shared<RunState>(
      *workflow_, parent_->run_id_, std::move(params), env, parent_->depth_, name,
      std::vector<std::pair<std::string, JsonText>>{},
      [this, iteration](RunState& c) { ChildDone(iteration, &c); });
  child->SetFrame(std::move(prefix), nullptr, 0);
  RunState* raw = child.get();
  std::shared_ptr<RunState> previous_child;
  {
    MutexLock lock(&mu_);
    previous_child = std::move(child_);
    child_ = std::move(child);
  }
  // The previous iteration may still be unwinding from its completion.
  if (previous_child) env->post([previous_child] {});
  std::vector<int> ready = raw->Prepare(Earlier(env));
  if (raw->remaining_.load(std::memory_order_acquire) == 0) {
    ChildDone(iteration, raw);  // every node was recorded by an earlier attempt
    return;
  }
  for (int r : ready) env->launch(raw, r);
}

void SubWorkflowRun::ChildDone(int iteration, RunState* child) {
  RunStatus status = child->Status();
  if (status == RunStatus::kFailed) {
    parent_->Finish(node_, NodeResult::Failure(ChildFailure(*child)));
    return;
  }
  if (status == RunStatus::kDegraded) parent_->degraded_.store(true, std::memory_order_release);
  JsonText output = child->OutputOf(OutputNode(*workflow_));
  if (!output) output = MakeJson("null");
  if (dyn_.kind != DynamicNode::Kind::kLoop) {
    parent_->Finish(node_, NodeResult::Success(std::move(output)));
    return;
  }
  std::string stopped;
  {
    MutexLock lock(&mu_);
    stopped = stop_reason_;
  }
  if (!stopped.empty()) {
    parent_->Finish(node_, NodeResult{NodeStatus::kCancelled, nullptr,
                                      Status::Error(ErrorKind::kCancelled, stopped)});
    return;
  }
  NodeContext* ctx;
  {
    MutexLock lock(&parent_->slots_[node_].mu);
    ctx = parent_->slots_[node_].ctx.get();
  }
  RunEnv* env = parent_->env_;
  env->reserve();
  dyn_.done_when->Call(*ctx, output, [this, iteration, output, env](NodeResult verdict) {
    Judged(iteration, output, std::move(verdict));
    env->release();
  });
}

void SubWorkflowRun::Judged(int iteration, JsonText output, NodeResult verdict) {
  const NodeSpec& spec = parent_->wf_.nodes[node_];
  std::string name = parent_->RecordName(node_);
  if (verdict.status == NodeStatus::kFailed || verdict.status == NodeStatus::kCancelled) {
    parent_->Finish(node_, NodeResult::Failure(Status::Error(
                               verdict.error.kind(), "done_when: " + verdict.error.message())));
    return;
  }
  if (Truthy(verdict.output)) {
    parent_->Finish(node_, NodeResult::Success(std::move(output)));
    return;
  }
  if (iteration >= dyn_.max_iterations) {
    parent_->Finish(node_, NodeResult::Failure(Status::Error(
                               ErrorKind::kPermanent, spec.where + ": loop '" + name +
                                                          "' ran max_iterations (" +
                                                          std::to_string(dyn_.max_iterations) +
                                                          ") without done_when returning true")));
    return;
  }
  StartIteration(iteration + 1, std::move(output));
}

void SubWorkflowRun::StopAll(const std::string& reason) {
  std::shared_ptr<RunState> child;
  {
    MutexLock lock(&mu_);
    if (stop_reason_.empty()) stop_reason_ = reason;
    child = child_;
  }
  if (child) child->StopAll(reason);
}

}  // namespace keel
