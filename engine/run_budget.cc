// RunState: stopping a whole run, what LLM calls spend, the budget that
// stops a run, and the checkpoints a node takes within an attempt.

#include <cstdio>

#include "engine/budget_text.h"
#include "engine/dynamic_run.h"
#include "engine/event_data.h"
#include "engine/run_state.h"

namespace keel {

void RunState::StopAll(const std::string& reason) {
  for (size_t i = 0; i < slots_.size(); ++i) {
    if (slots_[i].kept) continue;
    bool launched = false;
    MarkAbandoned(static_cast<int>(i), reason, &launched);
  }
  std::vector<RunState*> children;
  std::vector<DynamicRun*> dynamic;
  {
    MutexLock lock(&mu_);
    for (auto& child : children_) children.push_back(child.get());
    for (auto& run : dynamic_) dynamic.push_back(run.get());
  }
  for (RunState* child : children) child->StopAll(reason);
  for (DynamicRun* run : dynamic) run->StopAll(reason);
}

void RunState::StopStates(const std::string& reason) {
  env_->root->StopAll(reason);
  if (RunState* escalation = env_->escalation.load(std::memory_order_acquire)) {
    escalation->StopAll(reason);
  }
}

void RunState::StopRun(const std::string& reason) {
  {
    MutexLock lock(&env_->spend_mu);
    if (env_->stopped.load(std::memory_order_acquire)) return;
    env_->stop_reason = reason;
    env_->stopped.store(true, std::memory_order_release);
  }
  StopStates("run stopped: " + reason);
}

bool RunState::Spend(int i, const Usage& usage, std::string data) {
  Emit(i, kUsageEventKind, std::move(data));
  std::string reason;
  Usage spent;  // as it was when the budget ran out
  {
    MutexLock lock(&env_->spend_mu);
    env_->spent += usage;
    const char* exceeded = env_->budget.Exceeded(env_->spent);
    if (*exceeded == 0) return true;
    if (env_->stopped.load(std::memory_order_acquire)) return false;
    char text[160];
    if (env_->budget.max_tokens > 0 && env_->spent.tokens() > env_->budget.max_tokens) {
      std::snprintf(text, sizeof text, "%s exceeded: %lld tokens spent, limit %lld", exceeded,
                    static_cast<long long>(env_->spent.tokens()),
                    static_cast<long long>(env_->budget.max_tokens));
    } else {
      std::snprintf(text, sizeof text, "%s exceeded: %s", exceeded,
                    SpentAndLimit(env_->spent.cost, env_->budget.max_cost).c_str());
    }
    reason = text;
    spent = env_->spent;
    env_->stop_reason = reason;
    env_->stopped.store(true, std::memory_order_release);
  }
  if (env_->store) {
    EventRecord event{run_id_, 0, env_->clock->WallNow(), "", "budget_exceeded",
                      EventData()
                          .Add("reason", reason)
                          .Add("tokens", static_cast<double>(spent.tokens()))
                          .Add("cost", spent.cost)
                          .Done()};
    if (env_->observer) env_->observer->OnEvent("", event.kind, event.data_json, event.ts);
    env_->store->AppendEvent(std::move(event));
  }
  StopStates("run stopped: " + reason);
  return false;
}

void RunState::Checkpoint(int i, JsonText step) {
  {
    MutexLock lock(&slots_[i].mu);
    slots_[i].journal.push_back(step);
  }
  Emit(i, "checkpoint", *step);
}

}  // namespace keel
