// RunState: the policy stack around one node, outermost first:
// fallback( total-timeout( retry( breaker( attempt-timeout( body ))))),
// with bulkheads taken before each attempt.

#include <random>

#include "engine/event_data.h"
#include "engine/run_state.h"

namespace keel {
namespace {

std::mt19937_64& Rng() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return rng;
}

std::string Secs(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%gs", s);
  return buf;
}

// Why breaker `key` turned a call away.
std::string RejectionMessage(const std::string& key, const BreakerRegistry::Decision& d) {
  switch (d.state) {
    case BreakerState::kForcedOpen:
      return "circuit '" + key + "' is forced open (keel breakers --close " + key + " ends it)";
    case BreakerState::kRecovering:
      return "circuit '" + key + "' is recovering and admits " +
             std::to_string(static_cast<int>(d.share * 100)) + "% of calls";
    default:
      return "circuit '" + key + "' is open; next probe in " + Secs(d.retry_in);
  }
}

}  // namespace

void RunState::EmitBreakerTransition(int i, BreakerTransition t, int reopens) {
  const BreakerConfig& c = wf_.nodes[i].policy.circuit;
  EventData data;
  data.Add("key", c.key);
  if (t == BreakerTransition::kOpened || t == BreakerTransition::kReopened) {
    data.Add("reopens", reopens);
  }
  Emit(i, BreakerTransitionName(t), data.Done());
}

std::string RunState::BulkheadKey(int i, int stage) const {
  const NodePolicy& p = wf_.nodes[i].policy;
  if (stage == 0) return "key:" + p.bulkhead_key;
  return "run:" + run_id_;
}

void RunState::StartAttempt(int i) { AcquireSlots(i, 0); }

// Stage 0: the node's own bulkhead (max_concurrency per breaker key or node);
// stage 1: the run-wide --max-inflight. A full lane queues a callback that
// continues with the next stage on a worker.
void RunState::AcquireSlots(int i, int stage) {
  Slot& slot = slots_[i];
  for (; stage < 2; ++stage) {
    int limit = stage == 0 ? wf_.nodes[i].policy.max_concurrency : env_->options->max_inflight;
    if (limit <= 0) continue;
    MutexLock lock(&slot.mu);
    if (slot.stop != Stop::kNone) break;
    std::string key = BulkheadKey(i, stage);
    env_->reserve();  // held while queued; released once the grant has been handled
    Bulkhead::Ticket ticket = env_->bulkhead->Acquire(key, limit, [this, i, stage] {
      // The node may finish, and its state go, before the release: capture env.
      env_->post([this, i, stage, env = env_] {
        {
          MutexLock inner(&slots_[i].mu);
          slots_[i].slots_held = stage + 1;
          slots_[i].phase = Phase::kStarting;
        }
        AcquireSlots(i, stage + 1);
        env->release();
      });
    });
    if (ticket == 0) {
      env_->release();
      slot.slots_held = stage + 1;
      continue;
    }
    slot.phase = Phase::kQueued;
    slot.ticket = ticket;
    slot.ticket_stage = stage;
    Emit(i, "bulkhead_queued", EventData().Add("lane", key).Add("limit", limit).Done());
    return;
  }
  RunAttempt(i);
}

void RunState::ReleaseSlots(int i) {
  int held;
  {
    MutexLock lock(&slots_[i].mu);
    held = slots_[i].slots_held;
    slots_[i].slots_held = 0;
  }
  for (int stage = held - 1; stage >= 0; --stage) {
    int limit = stage == 0 ? wf_.nodes[i].policy.max_concurrency : env_->options->max_inflight;
    if (limit > 0) env_->bulkhead->Release(BulkheadKey(i, stage));
  }
}

void RunState::RunAttempt(int i) {
  Slot& slot = slots_[i];
  const NodeSpec& spec = wf_.nodes[i];
  const NodePolicy& policy = spec.policy;
  Stop stop;
  std::string abandon_reason;
  {
    MutexLock lock(&slot.mu);
    stop = slot.stop;
    abandon_reason = slot.abandon_reason;
  }
  if (stop == Stop::kAbandoned || stop == Stop::kTotalTimeout) {
    // Stopped while it waited for a bulkhead slot that was granted anyway.
    ReleaseSlots(i);
    GiveUp(i, stop == Stop::kAbandoned
                  ? NodeResult{NodeStatus::kCancelled, nullptr,
                               Status::Error(ErrorKind::kCancelled, abandon_reason)}
                  : NodeResult::Failure(Status::Error(
                        ErrorKind::kTimeout,
                        "total timeout of " + Secs(policy.total_timeout) + " passed")));
    return;
  }
  int64_t probe = 0;  // a half-open probe's id, while it holds a slot
  if (policy.has_circuit) {
    auto d = env_->breakers->Admit(policy.circuit, env_->clock->WallNow(),
                                   BreakerRegistry::Renewer{env_->clock, env_->post});
    if (d.transition != BreakerTransition::kNone) {
      EmitBreakerTransition(i, d.transition, d.reopens);
    }
    if (d.admission == Admission::kRejected) {
      ReleaseSlots(i);
      Emit(i, "circuit_rejected",
           EventData()
               .Add("key", policy.circuit.key)
               .Add("state", BreakerStateName(d.state))
               .Add("retry_in", d.retry_in)
               .Done());
      AttemptDone(i,
                  NodeResult::Failure(Status::Error(ErrorKind::kCircuitOpen,
                                                    RejectionMessage(policy.circuit.key, d),
                                                    d.retry_in)),
                  /*admitted=*/false, 0);
      return;
    }
    probe = d.probe;
  }
  int attempt;
  double started_wall;
  NodeContext* ctx;  // the slot keeps it until the node finishes
  {
    MutexLock lock(&slot.mu);
    slot.token = std::make_shared<CancelToken>();
    attempt = ++slot.attempts;
    started_wall = slot.started_wall;
    ctx = slot.ctx.get();
    slot.ctx->attempt = attempt;
    slot.ctx->cancel = slot.token.get();
    slot.ctx->journal = slot.journal;
    slot.phase = Phase::kAttempt;
    slot.attempt_started = env_->clock->Now();
    slot.ctx->deadline = policy.timeout > 0 ? env_->clock->Now() + policy.timeout : 0;
    if (policy.timeout > 0 && !spec.body->EnforcesDeadline()) {
      env_->reserve();
      slot.attempt_timer = env_->clock->After(policy.timeout, [this, i, attempt, env = env_] {
        OnAttemptTimeout(i, attempt);
        env->release();
      });
    }
  }
  if (attempt > 1) Emit(i, "attempt_started", EventData().Add("attempt", attempt).Done());
  RecordStarted(i, attempt, started_wall);
  env_->reserve();
  // A map item's or inner node's state may be gone once AttemptDone returns:
  // only `env` (which outlives every state of the run) is touched after it.
  auto done = [this, i, probe, env = env_](NodeResult result) {
    AttemptDone(i, std::move(result), /*admitted=*/true, probe);
    env->release();  // last: the run may end as soon as this returns
  };
  try {
    spec.body->Start(*ctx, std::move(done));
  } catch (const std::exception& e) {
    // Start promised not to throw; if it did, `done` was not called.
    RunEnv* env = env_;
    AttemptDone(i, NodeResult::Failure(Status::Error(ErrorKind::kError, e.what())), true, probe);
    env->release();
  }
}

void RunState::OnAttemptTimeout(int i, int attempt) {
  Slot& slot = slots_[i];
  std::shared_ptr<CancelToken> token;
  {
    MutexLock lock(&slot.mu);
    if (slot.attempts != attempt || slot.phase != Phase::kAttempt) return;
    slot.attempt_timer = 0;
    if (slot.stop == Stop::kNone) slot.stop = Stop::kAttemptTimeout;
    token = slot.token;
  }
  token->Cancel();
}

void RunState::OnTotalTimeout(int i) {
  Slot& slot = slots_[i];
  std::shared_ptr<CancelToken> token;
  bool give_up_now = false;
  {
    MutexLock lock(&slot.mu);
    slot.total_timer = 0;
    if (slot.phase == Phase::kDone || slot.phase == Phase::kFallback) return;
    slot.stop = Stop::kTotalTimeout;
    if (slot.phase == Phase::kAttempt) {
      token = slot.token;
    } else if (slot.phase == Phase::kBackoff && env_->clock->Cancel(slot.backoff_timer)) {
      env_->release();  // the backoff timer's reservation
      give_up_now = true;
    } else if (slot.phase == Phase::kQueued &&
               env_->bulkhead->Cancel(BulkheadKey(i, slot.ticket_stage), slot.ticket)) {
      env_->release();  // the queued waiter's reservation
      give_up_now = true;
    }
  }
  Emit(i, "total_timeout", EventData().Add("seconds", wf_.nodes[i].policy.total_timeout).Done());
  if (token) token->Cancel();
  if (give_up_now) {
    ReleaseSlots(i);
    env_->reserve();
    env_->post([this, i, env = env_] {
      GiveUp(i, NodeResult::Failure(Status::Error(
                    ErrorKind::kTimeout,
                    "total timeout of " + Secs(wf_.nodes[i].policy.total_timeout) + " passed")));
      env->release();
    });
  }
}

void RunState::AttemptDone(int i, NodeResult result, bool admitted, int64_t probe) {
  Slot& slot = slots_[i];
  const NodePolicy& policy = wf_.nodes[i].policy;
  Stop stop;
  int attempt;
  bool late = false;
  double took = 0;  // the attempt's duration
  {
    MutexLock lock(&slot.mu);
    took = env_->clock->Now() - slot.attempt_started;
    if (slot.attempt_timer && env_->clock->Cancel(slot.attempt_timer)) env_->release();
    slot.attempt_timer = 0;
    stop = slot.stop;
    attempt = slot.attempts;
    if (stop == Stop::kAttemptTimeout) slot.stop = Stop::kNone;  // the next attempt starts afresh
    // A body stuck where its deadline cannot reach it (a blocking C call)
    // may still report success after its timeout: that result is discarded.
    late = admitted && slot.ctx && slot.ctx->deadline > 0 &&
           (stop == Stop::kAttemptTimeout || env_->clock->Now() > slot.ctx->deadline);
  }
  if (admitted) ReleaseSlots(i);
  if (result.status == NodeStatus::kWaiting) {  // a wait node parks the run
    if (admitted && policy.has_circuit) env_->breakers->Release(policy.circuit, probe);
    Finish(i, std::move(result));
    return;
  }
  bool ok = result.status == NodeStatus::kSucceeded || result.status == NodeStatus::kSkipped;
  if (ok && late && stop != Stop::kAbandoned && stop != Stop::kTotalTimeout) {
    ok = false;
    stop = Stop::kAttemptTimeout;  // turns the result into the timeout below
  }
  if (!ok) {
    if (stop == Stop::kAttemptTimeout ||
        (stop == Stop::kNone && policy.timeout > 0 && result.error.kind() == ErrorKind::kTimeout &&
         wf_.nodes[i].body->EnforcesDeadline())) {
      result = NodeResult::Failure(Status::Error(
          ErrorKind::kTimeout,
          "attempt " + std::to_string(attempt) + " timed out after " + Secs(policy.timeout)));
    } else if (stop == Stop::kTotalTimeout) {
      result = NodeResult::Failure(Status::Error(
          ErrorKind::kTimeout, "total timeout of " + Secs(policy.total_timeout) + " passed"));
    } else if (stop == Stop::kAbandoned) {
      MutexLock lock(&slot.mu);
      result = NodeResult{NodeStatus::kCancelled, nullptr,
                          Status::Error(ErrorKind::kCancelled, slot.abandon_reason)};
    }
  }
  if (admitted && policy.has_circuit && stop != Stop::kAbandoned) {
    // Timeouts count as failures: a slow dependency is an unhealthy one.
    bool timed_out = !ok && result.error.kind() == ErrorKind::kTimeout;
    int reopens = 0;
    auto t = env_->breakers->Record(policy.circuit, CallOutcome(ok, took, timed_out), probe,
                                    env_->clock->WallNow(), &reopens);
    if (t != BreakerTransition::kNone) EmitBreakerTransition(i, t, reopens);
  } else if (admitted && policy.has_circuit) {
    // Abandoned: no outcome to count, but the probe's slot must go.
    env_->breakers->Release(policy.circuit, probe);
  }
  if (ok) {
    Finish(i, std::move(result));
    return;
  }
  if (admitted) {
    Emit(i, "attempt_failed",
         EventData()
             .Add("attempt", attempt)
             .Add("kind", ErrorKindName(result.error.kind()))
             .Add("message", result.error.message())
             .Done());
  }
  if ((stop == Stop::kNone || stop == Stop::kAttemptTimeout) && ScheduleRetry(i, result)) return;
  bool out_of_time;
  {
    MutexLock lock(&slot.mu);
    out_of_time = stop != Stop::kTotalTimeout && slot.stop == Stop::kTotalTimeout;
  }
  if (out_of_time) {
    Emit(i, "total_timeout", EventData().Add("seconds", policy.total_timeout).Done());
    result = NodeResult::Failure(Status::Error(
        ErrorKind::kTimeout, "total timeout of " + Secs(policy.total_timeout) +
                                 " leaves no time for another attempt (last: " +
                                 result.error.ToString() + ")"));
  }
  GiveUp(i, std::move(result));
}

bool RunState::ScheduleRetry(int i, const NodeResult& result) {
  Slot& slot = slots_[i];
  const RetryPolicy& retry = wf_.nodes[i].policy.retry;
  if (result.status != NodeStatus::kFailed || !retry.Retries(result.error.kind())) return false;
  double delay;
  {
    MutexLock lock(&slot.mu);
    // Attempt numbers keep counting across a resume; the budget is this process's.
    int made = slot.attempts - slot.attempts_before;
    if (made >= retry.attempts || slot.stop != Stop::kNone) return false;
    delay = retry.Delay(made + 1, slot.last_delay, result.error.retry_after(), Rng());
    if (slot.deadline > 0 && env_->clock->Now() + delay >= slot.deadline) {
      // The next attempt could not start before the total timeout: give up now.
      slot.stop = Stop::kTotalTimeout;
      return false;
    }
  }
  // The run-wide budget, so a failing dependency cannot multiply the load.
  int budget = env_->retry_budget.load(std::memory_order_acquire);
  while (budget >= 0) {
    if (budget == 0) {
      Emit(i, "retry_budget_exhausted", "{}");
      return false;
    }
    if (env_->retry_budget.compare_exchange_weak(budget, budget - 1)) break;
  }
  MutexLock lock(&slot.mu);
  slot.last_delay = delay;
  slot.phase = Phase::kBackoff;
  Emit(i, "retry_scheduled",
       EventData()
           .Add("attempt", slot.attempts + 1)
           .Add("delay", delay)
           .Add("after", ErrorKindName(result.error.kind()))
           .Done());
  env_->reserve();
  slot.backoff_timer = env_->clock->After(delay, [this, i, env = env_] {
    {
      MutexLock inner(&slots_[i].mu);
      slots_[i].backoff_timer = 0;
    }
    env->post([this, i] { StartAttempt(i); });
    env->release();
  });
  return true;
}

void RunState::GiveUp(int i, NodeResult result) {
  const NodePolicy& policy = wf_.nodes[i].policy;
  bool abandoned;
  {
    MutexLock lock(&slots_[i].mu);
    abandoned = slots_[i].abandoned;
  }
  if (!policy.fallback.empty() && !abandoned && result.status == NodeStatus::kFailed) {
    StartFallback(i, 0, std::move(result));
    return;
  }
  Finish(i, std::move(result));
}

void RunState::StartFallback(int i, size_t k, NodeResult last) {
  const NodePolicy& policy = wf_.nodes[i].policy;
  // Entries meant for other kinds of failure are passed over.
  while (k < policy.fallback.size() && !policy.fallback[k].Matches(last.error.kind())) ++k;
  if (k == policy.fallback.size()) {
    Finish(i, std::move(last));
    return;
  }
  const std::string& name = policy.fallback[k].workflow;
  const WorkflowSpec* fallback = nullptr;
  if (env_->options->library) {
    for (const auto& wf : *env_->options->library) {
      if (wf.name == name) fallback = &wf;
    }
  }
  if (!fallback || depth_ + 1 > kMaxFallbackDepth) {
    last.error = Status::Error(last.error.kind(),
                               last.error.message() + "; fallback '" + name + "' is not available");
    StartFallback(i, k + 1, std::move(last));
    return;
  }
  Slot& slot = slots_[i];
  std::vector<std::pair<std::string, JsonText>> deps;
  int attempts;
  {
    MutexLock lock(&slot.mu);
    slot.phase = Phase::kFallback;
    deps = slot.ctx->deps;
    attempts = slot.attempts;
  }
  Emit(i, "fallback_started",
       EventData()
           .Add("workflow", fallback->name)
           .Add("after", ErrorKindName(last.error.kind()))
           .Done());
  auto child = std::make_unique<RunState>(
      *fallback, run_id_, params_, env_, depth_ + 1, wf_.nodes[i].name, std::move(deps),
      [this, i, k, last](RunState& c) { FallbackDone(i, k, last, c); });
  child->failure_ = MakeJson(EventData()
                                .Add("node", wf_.nodes[i].name)
                                .Add("kind", ErrorKindName(last.error.kind()))
                                .Add("message", last.error.message())
                                .Add("attempts", attempts)
                                .Done());
  RunState* raw = child.get();
  {
    MutexLock lock(&mu_);
    children_.push_back(std::move(child));
  }
  for (int ready : raw->Prepare({})) env_->launch(raw, ready);
}

void RunState::FallbackDone(int i, size_t k, NodeResult last, RunState& child) {
  const WorkflowSpec& fallback = child.wf_;
  RunStatus status = child.Status();
  JsonText output = child.OutputOf(OutputNode(fallback));
  bool ok = status != RunStatus::kFailed && output;
  Emit(i, "fallback_finished",
       EventData().Add("workflow", fallback.name).Add("status", RunStatusName(status)).Done());
  if (ok) {
    Finish(i, NodeResult{NodeStatus::kFallback, std::move(output), Status::Ok()});
    return;
  }
  last.error = Status::Error(last.error.kind(), last.error.message() + "; fallback '" +
                                                    fallback.name + "' " +
                                                    std::string(RunStatusName(status)));
  {
    MutexLock lock(&slots_[i].mu);
    slots_[i].phase = Phase::kStarting;
  }
  StartFallback(i, k + 1, std::move(last));
}

}  // namespace keel
