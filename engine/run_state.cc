// RunState: dependencies, joins, skips, cancellation and recording.
// What a resumed run keeps is in run_state_resume.cc; the policy stack of a
// single node is in node_attempt.cc.

#include "engine/run_state.h"

#include <unordered_set>

#include "engine/dynamic_node.h"
#include "engine/dynamic_run.h"
#include "engine/event_data.h"

namespace keel {
namespace {

std::string_view FinishEventKind(NodeStatus status) {
  switch (status) {
    case NodeStatus::kSucceeded:
      return "node_succeeded";
    case NodeStatus::kSkipped:
      return "node_skipped";
    case NodeStatus::kCancelled:
      return "node_cancelled";
    case NodeStatus::kFallback:
      return "node_fallback";
    case NodeStatus::kWaiting:
      return "node_waiting";
    default:
      return "node_failed";
  }
}

std::string JoinName(const JoinPolicy& join) {
  switch (join.kind) {
    case JoinPolicy::Kind::kAny:
      return "any";
    case JoinPolicy::Kind::kQuorum:
      return "quorum " + std::to_string(join.quorum);
    case JoinPolicy::Kind::kBestEffort:
      return "best_effort";
    default:
      return "all";
  }
}

}  // namespace

RunState::RunState(const WorkflowSpec& wf, std::string run_id, JsonText params, RunEnv* env,
                   int depth, std::string parent_node,
                   std::vector<std::pair<std::string, JsonText>> inherited,
                   std::function<void(RunState&)> on_done)
    : wf_(wf),
      run_id_(std::move(run_id)),
      params_(std::move(params)),
      env_(env),
      depth_(depth),
      parent_node_(std::move(parent_node)),
      inherited_(std::move(inherited)),
      on_done_(std::move(on_done)),
      slots_(wf.nodes.size()),
      records_(parent_node_.empty()) {
  std::unordered_map<std::string_view, int> index;
  for (size_t i = 0; i < wf.nodes.size(); ++i) index.emplace(wf.nodes[i].name, int(i));
  for (size_t i = 0; i < wf.nodes.size(); ++i) {
    for (const auto& dep : wf.nodes[i].after) {
      int d = index.at(dep);
      slots_[i].deps.push_back(d);
      slots_[d].dependents.push_back(static_cast<int>(i));
    }
  }
  for (auto& slot : slots_) slot.keep_output = slot.dependents.empty();
  if (!parent_node_.empty()) {
    int out = OutputNode(wf);
    if (out >= 0) slots_[out].keep_output = true;
  }
}

RunState::~RunState() = default;

void RunState::SetFrame(std::string prefix, JsonText item, int index) {
  prefix_ = std::move(prefix);
  records_ = true;
  item_ = std::move(item);
  index_ = index;
}

int RunState::kept_count() const {
  int n = 0;
  for (const auto& s : slots_) n += s.kept ? 1 : 0;
  return n;
}

bool RunState::ResolveDeps(int i, NodeContext* ctx, std::string* cancel_reason, int* succeeded) {
  const NodeSpec& spec = wf_.nodes[i];
  bool all_join = spec.policy.join.kind == JoinPolicy::Kind::kAll;
  ctx->deps = inherited_;
  *succeeded = 0;
  for (int d : slots_[i].deps) {
    const std::string& name = wf_.nodes[d].name;
    if (!slots_[d].done.load(std::memory_order_acquire)) {
      ctx->failed.push_back(name);  // a join fired without it
      continue;
    }
    const NodeResult& dep = slots_[d].result;
    switch (dep.status) {
      case NodeStatus::kSucceeded:
      case NodeStatus::kFallback:
        ctx->deps.emplace_back(name, dep.output);
        ++*succeeded;
        break;
      case NodeStatus::kSkipped:
        ctx->skipped.push_back(name);
        break;
      case NodeStatus::kFailed:
        if (wf_.nodes[d].optional || !all_join) {
          ctx->failed.push_back(name);
        } else if (cancel_reason->empty()) {
          *cancel_reason = "dependency '" + name + "' failed";
        }
        break;
      default:
        if (!all_join) {
          ctx->failed.push_back(name);
        } else if (cancel_reason->empty()) {
          *cancel_reason = "dependency '" + name + "' was cancelled";
        }
        break;
    }
  }
  const JoinPolicy& join = spec.policy.join;
  int total = static_cast<int>(slots_[i].deps.size());
  if (cancel_reason->empty() && total > 0) {
    if (join.kind == JoinPolicy::Kind::kAny && *succeeded == 0 && ctx->skipped.empty()) {
      *cancel_reason = "join any: none of its " + std::to_string(total) + " dependencies succeeded";
    } else if (join.kind == JoinPolicy::Kind::kQuorum && *succeeded < join.quorum) {
      *cancel_reason = "join quorum: " + std::to_string(*succeeded) + " of " +
                       std::to_string(total) + " dependencies succeeded, " +
                       std::to_string(join.quorum) + " needed";
    }
  }
  return cancel_reason->empty();
}

void RunState::Launch(int i) {
  Slot& slot = slots_[i];
  const NodeSpec& spec = wf_.nodes[i];
  // Pairs with the dependencies' release decrements, so their results are
  // visible here whichever thread TBB picked (and visible to TSan, which
  // cannot see TBB's own task hand-off).
  (void)slot.pending.load(std::memory_order_acquire);
  if (slot.unneeded) {
    std::string reason;
    {
      MutexLock lock(&slot.mu);
      reason = slot.abandon_reason;
    }
    Finish(i, NodeResult{NodeStatus::kCancelled, nullptr,
                         Status::Error(ErrorKind::kCancelled, reason)});
    return;
  }
  auto ctx = std::make_unique<NodeContext>();
  std::string cancel_reason;
  int succeeded = 0;
  bool runs = ResolveDeps(i, ctx.get(), &cancel_reason, &succeeded);
  {
    MutexLock lock(&slot.mu);
    if (slot.abandoned) {
      runs = false;
      cancel_reason = slot.abandon_reason;
    }
  }
  if (runs && env_->store != nullptr) {
    // Execution runs ahead of the durable record only until the store gives
    // up on its storage; from then on nothing starts.
    keel::Status health = env_->store->WriteHealth();
    if (!health.ok()) env_->root->StopRun("cannot save checkpoints: " + health.message());
  }
  if (runs && env_->stopped.load(std::memory_order_acquire)) {
    MutexLock lock(&env_->spend_mu);
    runs = false;
    cancel_reason = "run stopped: " + env_->stop_reason;
  }
  if (spec.policy.join.kind != JoinPolicy::Kind::kAll) {
    int total = static_cast<int>(slot.deps.size());
    Emit(i, "join_satisfied",
         EventData()
             .Add("join", JoinName(spec.policy.join))
             .Add("succeeded", succeeded)
             .Add("of", total)
             .Add("ok", runs)
             .Done());
    for (int d : slot.deps) {
      if (!slots_[d].done.load(std::memory_order_acquire)) {
        Abandon(d, "not needed: join of '" + spec.name + "' was satisfied without it");
      }
    }
  }
  if (!runs) {
    Finish(i, NodeResult{NodeStatus::kCancelled, nullptr,
                         Status::Error(ErrorKind::kCancelled, cancel_reason)});
    return;
  }
  ctx->run_id = run_id_;
  ctx->workflow = wf_.name;
  ctx->node = RecordName(i);
  ctx->scope = records_ ? "" : parent_node_ + ">" + wf_.name + "/";
  ctx->item = item_;
  ctx->index = index_;
  ctx->params = params_;
  ctx->failure = failure_;
  ctx->post = env_->post;
  ctx->record = [this, i](std::string kind, std::string data) { Emit(i, kind, std::move(data)); };
  ctx->spend = [this, i](const Usage& usage, std::string data) {
    return Spend(i, usage, std::move(data));
  };
  ctx->checkpoint = [this, i](JsonText step) { Checkpoint(i, std::move(step)); };
  if (spec.wait) ctx->wait = [this, i](NodeCompletion done) { StartWait(i, std::move(done)); };
  int attempts;
  {
    MutexLock lock(&slot.mu);
    attempts = slot.attempts;
    slot.ctx = std::move(ctx);
    slot.phase = Phase::kStarting;
    slot.started_wall = env_->clock->WallNow();
    slot.started_mono = env_->clock->Now();
    if (spec.policy.total_timeout > 0 && !spec.dynamic) {
      slot.deadline = slot.started_mono + spec.policy.total_timeout;
      env_->reserve();
      slot.total_timer = env_->clock->After(spec.policy.total_timeout, [this, i, env = env_] {
        OnTotalTimeout(i);
        env->release();
      });
    }
  }
  Emit(i, "node_started", EventData().Add("attempt", attempts + 1).Done());
  if (spec.dynamic) return StartDynamic(i);
  StartAttempt(i);
}

void RunState::RecordStarted(int i, int attempt, double started_wall) {
  if (env_->store && records_) {
    NodeRecord rec;
    rec.run_id = run_id_;
    rec.node = RecordName(i);
    rec.status = NodeStatus::kRunning;
    rec.attempts = attempt;
    rec.started_at = started_wall;
    env_->store->SaveNode(std::move(rec));
  }
  if (env_->observer && records_) env_->observer->OnNodeStarted(RecordName(i), attempt);
}

void RunState::NotifyDependents(int i, bool succeeded) {
  for (int j : slots_[i].dependents) {
    Slot& t = slots_[j];
    if (t.kept) continue;
    const JoinPolicy& join = wf_.nodes[j].policy.join;
    int ok = succeeded ? t.dep_succeeded.fetch_add(1, std::memory_order_acq_rel) + 1
                       : t.dep_succeeded.load(std::memory_order_acquire);
    int left = t.pending.fetch_sub(1, std::memory_order_acq_rel) - 1;
    bool fire = left == 0;
    if (join.kind == JoinPolicy::Kind::kAny) fire = fire || ok >= 1;
    if (join.kind == JoinPolicy::Kind::kQuorum) fire = fire || ok >= join.quorum;
    if (join.kind == JoinPolicy::Kind::kBestEffort && !fire &&
        !t.join_timer_started.exchange(true)) {
      // The first dependency to finish starts the wait for the others.
      MutexLock lock(&t.mu);
      env_->reserve();
      t.join_timer = env_->clock->After(join.best_effort, [this, j, env = env_] {
        if (!slots_[j].fired.exchange(true)) env->launch(this, j);
        env->release();
      });
    }
    if (fire && !t.fired.exchange(true)) {
      if (join.kind == JoinPolicy::Kind::kBestEffort) {
        MutexLock lock(&t.mu);
        if (t.join_timer && env_->clock->Cancel(t.join_timer)) env_->release();
      }
      env_->launch(this, j);
    }
  }
}

void RunState::Abandon(int d, const std::string& reason) {
  Slot& s = slots_[d];
  if (s.kept || s.needed_by.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  bool launched = false;
  if (!MarkAbandoned(d, reason, &launched) || launched) return;
  for (int e : s.deps) {
    if (!slots_[e].done.load(std::memory_order_acquire)) {
      Abandon(e, "not needed: its dependents were cancelled");
    }
  }
}

bool RunState::MarkAbandoned(int d, const std::string& reason, bool* launched) {
  Slot& s = slots_[d];
  std::shared_ptr<CancelToken> token;
  bool finish_now = false;
  {
    MutexLock lock(&s.mu);
    if (s.done.load(std::memory_order_acquire) || s.abandoned) return false;
    s.abandoned = true;
    s.abandon_reason = reason;
    s.stop = Stop::kAbandoned;
    *launched = s.phase != Phase::kIdle;
    if (s.phase == Phase::kAttempt) {
      token = s.token;
    } else if (s.phase == Phase::kBackoff && env_->clock->Cancel(s.backoff_timer)) {
      env_->release();  // the backoff timer's reservation
      finish_now = true;
    } else if (s.phase == Phase::kQueued &&
               env_->bulkhead->Cancel(BulkheadKey(d, s.ticket_stage), s.ticket)) {
      finish_now = true;
    }
  }
  if (token) token->Cancel();
  if (finish_now) {
    env_->reserve();
    env_->post([this, d, reason, env = env_] {
      GiveUp(d, NodeResult{NodeStatus::kCancelled, nullptr,
                           Status::Error(ErrorKind::kCancelled, reason)});
      env->release();
    });
  }
  return true;
}

void RunState::Finish(int i, NodeResult result) {
  Slot& slot = slots_[i];
  double seconds = 0;
  int attempts;
  double started_wall;
  {
    MutexLock lock(&slot.mu);
    if (slot.phase == Phase::kDone) return;
    slot.phase = Phase::kDone;
    attempts = slot.attempts;
    started_wall = slot.started_wall;
    slot.ctx.reset();
    if (slot.total_timer && env_->clock->Cancel(slot.total_timer)) env_->release();
    if (started_wall) seconds = env_->clock->Now() - slot.started_mono;
  }
  if (result.status == NodeStatus::kPending || result.status == NodeStatus::kRunning) {
    result = NodeResult::Failure(
        Status::Error(ErrorKind::kError, "node body reported an unfinished status"));
  }
  if (!result.error.ok()) {
    // Cancellations too: a join that could not start may be all that failed
    // the run (its dependencies being optional), and then it is the reason.
    MutexLock lock(&mu_);
    errors_.emplace_back(i, RecordName(i) + ": " + result.error.ToString());
  }
  double now = env_->clock->WallNow();
  EventData data;
  data.Add("seconds", seconds).Add("attempts", attempts);
  if (!result.error.ok()) {
    data.Add("kind", ErrorKindName(result.error.kind())).Add("message", result.error.message());
    // Its failure degrades the run instead of failing it (engine/event_severity.h).
    if (wf_.nodes[i].optional) data.Add("optional", true);
  }
  if (env_->store && records_) {
    NodeRecord rec;
    rec.run_id = run_id_;
    rec.node = RecordName(i);
    rec.status = result.status;
    rec.attempts = attempts;
    if (result.output) rec.output_json = *result.output;
    rec.error_kind = result.error.kind();
    rec.error_message = result.error.message();
    rec.started_at = started_wall;
    rec.finished_at = now;
    EventRecord event{run_id_, 0, now, RecordName(i), std::string(FinishEventKind(result.status)),
                      data.Done()};
    if (env_->observer) env_->observer->OnEvent(event.node, event.kind, event.data_json, now);
    // The record and its event are committed together: a crash or a storage
    // failure never leaves one without the other.
    env_->store->FinishNode(std::move(rec), std::move(event));
  } else {
    Emit(i, FinishEventKind(result.status), data.Done());
  }
  if (env_->observer && records_) {
    env_->observer->OnNodeFinished(RecordName(i), result, seconds);
  }
  bool succeeded = Succeeded(result.status);
  if (result.status == NodeStatus::kWaiting) {
    // Parked: its dependents do not start, and the run ends waiting once
    // the rest has finished (engine/wait_node.h).
    slot.result = std::move(result);
    slot.done.store(true, std::memory_order_release);
    return;
  }
  slot.result = std::move(result);
  for (int d : slot.deps) {
    Slot& dep = slots_[d];
    // A join may finish before a dependency it went ahead without; that
    // dependency then drops its own output when it finishes (below).
    if (!dep.kept && !dep.keep_output &&
        dep.consumers.fetch_sub(1, std::memory_order_acq_rel) == 1 &&
        dep.done.load(std::memory_order_acquire)) {
      dep.result.output.reset();
    }
  }
  if (!slot.keep_output && slot.consumers.load(std::memory_order_acquire) == 0) {
    slot.result.output.reset();  // every dependent was kept from an earlier attempt
  }
  slot.done.store(true, std::memory_order_release);
  NotifyDependents(i, succeeded);
  if (remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1 && on_done_) on_done_(*this);
}

void RunState::Emit(int i, std::string_view kind, std::string data) {
  if (!env_->store) return;
  std::string node = RecordName(i);
  double now = env_->clock->WallNow();
  if (!records_) {
    // A fallback workflow's events belong to the node it runs for.
    std::string wrapped = EventData()
                              .Add("fallback", wf_.name)
                              .Add("node", node)
                              .Add("event", kind)
                              .AddRaw("data", data)
                              .Done();
    if (env_->observer) env_->observer->OnEvent(parent_node_, "fallback_event", wrapped, now);
    env_->store->AppendEvent({run_id_, 0, now, parent_node_, "fallback_event", std::move(wrapped)});
    return;
  }
  if (env_->observer) env_->observer->OnEvent(node, kind, data, now);
  env_->store->AppendEvent({run_id_, 0, now, std::move(node), std::string(kind), std::move(data)});
}

bool RunState::Excused(int i) const {
  const Slot& slot = slots_[i];
  if (wf_.nodes[i].optional) return true;
  if (slot.result.status == NodeStatus::kCancelled) {
    MutexLock lock(&slot.mu);
    if (slot.abandoned) return true;
  }
  // A race loser: every dependent is a join that went ahead without it.
  if (slot.dependents.empty()) return false;
  for (int j : slot.dependents) {
    if (wf_.nodes[j].policy.join.kind == JoinPolicy::Kind::kAll) return false;
    if (slots_[j].result.status == NodeStatus::kCancelled) return false;
  }
  return true;
}

RunStatus RunState::Status() const {
  bool degraded = false;
  bool waiting = false;
  for (size_t i = 0; i < slots_.size(); ++i) {
    NodeStatus st = slots_[i].result.status;
    waiting = waiting || st == NodeStatus::kWaiting;
    if (st != NodeStatus::kFailed && st != NodeStatus::kCancelled) continue;
    if (!Excused(int(i))) return RunStatus::kFailed;
    // A cancelled race loser is expected; any failure a join absorbed is not.
    if (st == NodeStatus::kFailed || wf_.nodes[i].optional) degraded = true;
  }
  if (degraded_.load(std::memory_order_acquire)) degraded = true;
  if (waiting) return RunStatus::kWaiting;
  return degraded ? RunStatus::kDegraded : RunStatus::kSucceeded;
}

JsonText RunState::OutputOf(int node) const {
  return node < 0 ? nullptr : slots_[node].result.output;
}

RunOutcome RunState::Outcome() {
  RunOutcome out;
  out.status = Status();
  if (env_->stopped.load(std::memory_order_acquire)) {
    out.status = RunStatus::kFailed;
    MutexLock lock(&env_->spend_mu);
    out.error = env_->stop_reason;
  } else if (out.status == RunStatus::kFailed) {
    MutexLock lock(&mu_);
    for (const auto& [i, message] : errors_) {
      if (!Excused(i)) {
        out.error = message;
        out.failed_node = i;
        break;
      }
    }
  }
  for (size_t i = 0; i < slots_.size(); ++i) {
    Slot& slot = slots_[i];
    {
      MutexLock lock(&slot.mu);
      out.attempts.push_back(slot.attempts);
    }
    out.results.push_back(std::move(slot.result));
  }
  return out;
}

}  // namespace keel
