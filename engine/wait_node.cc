// Wait nodes: WaitSpec helpers and RunState's half of a wait (see
// engine/wait_node.h): taking the signal, durable due times, parking the run
// or holding the wait on Clock timers.

#include "engine/wait_node.h"

#include <rapidjson/document.h>

#include <cstdio>

#include "engine/event_data.h"
#include "engine/run_state.h"

namespace keel {
namespace {

// The body of every wait node: stateless, so any number of threads may Start
// it at once.
class WaitBody final : public NodeBody {
 public:
  void Start(const NodeContext& ctx, NodeCompletion done) override {
    if (!ctx.wait) {
      done(NodeResult::Failure(
          Status::Error(ErrorKind::kPermanent, "wait node '" + ctx.node + "' has no executor")));
      return;
    }
    ctx.wait(std::move(done));
  }
  // A wait has no attempt timeout: its `timeout` is the signal's.
  bool EnforcesDeadline() const override { return true; }
};

std::string Secs(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%gs", s);
  return buf;
}

}  // namespace

double WaitSpec::DueAt(double now) const {
  if (until > 0) return until;
  if (delay > 0) return now + delay;
  if (!signal.empty() && timeout > 0) return now + timeout;
  return 0;
}

std::string WaitInfoJson(const WaitInfo& info) {
  EventData data;
  if (!info.signal.empty()) data.Add("signal", info.signal);
  if (info.due > 0) data.Add("due", info.due);
  return data.Done();
}

bool ParseWaitInfo(const std::string& json, WaitInfo* info) {
  rapidjson::Document doc;
  if (doc.Parse(json.c_str(), json.size()).HasParseError() || !doc.IsObject()) return false;
  auto signal = doc.FindMember("signal");
  auto due = doc.FindMember("due");
  bool has_signal = signal != doc.MemberEnd() && signal->value.IsString();
  bool has_due = due != doc.MemberEnd() && due->value.IsNumber();
  if (!has_signal && !has_due) return false;
  info->signal = has_signal ? signal->value.GetString() : "";
  info->due = has_due ? due->value.GetDouble() : 0;
  return true;
}

std::shared_ptr<NodeBody> MakeWaitBody() { return std::make_shared<WaitBody>(); }

// One attempt of a wait node, from its first look to its completion. Looks
// (Check) run on workers; its timers fire on the clock's thread and post the
// next look. Exactly one path completes it (Complete), under mu_; the timers
// and the cancel subscription post nothing once it has completed, and post
// under mu_, so nothing reaches the run after `done` let it end.
class RunState::Waiter : public std::enable_shared_from_this<Waiter> {
 public:
  Waiter(RunState* run, int i, double due, std::shared_ptr<CancelToken> token, NodeCompletion done)
      : run_(run), i_(i), due_(due), token_(std::move(token)), done_(std::move(done)) {}

  // Looks once: takes the signal, or ends on the timer or the timeout; else
  // parks the node, or (holding) arms the timers for the next look.
  void Check() {
    RunEnv* env = run_->env_;
    const NodeSpec& spec = run_->wf_.nodes[i_];
    const WaitSpec& wait = *spec.wait;
    if (token_ && token_->cancelled()) {
      return Complete(NodeResult{NodeStatus::kCancelled, nullptr,
                                 Status::Error(ErrorKind::kCancelled, "wait cancelled")});
    }
    double now = env->clock->WallNow();
    if (!wait.timer() && env->store != nullptr) {
      auto taken = env->store->TakeSignal(run_->run_id_, wait.signal, spec.name, now);
      if (!taken.ok()) return Complete(NodeResult::Failure(taken.status()));
      if (taken->has_value()) {
        run_->Emit(i_, "signal_taken", EventData().Add("signal", wait.signal).Done());
        return Complete(NodeResult::Success(MakeJson(std::move(**taken))));
      }
    }
    if (wait.timer() && now >= due_) {
      return Complete(NodeResult::Success(MakeJson(EventData().Add("due", due_).Done())));
    }
    if (!wait.timer() && due_ > 0 && now >= due_) {
      return Complete(NodeResult::Failure(
          Status::Error(ErrorKind::kTimeout,
                        "signal '" + wait.signal + "' did not come within " + Secs(wait.timeout))));
    }
    JsonText info = MakeJson(WaitInfoJson({wait.signal, due_}));
    if (!env->options->hold_waits) {
      return Complete(NodeResult{NodeStatus::kWaiting, std::move(info), Status::Ok()});
    }
    Hold(std::move(info), now);
  }

 private:
  // Keeps waiting in this process: records the node waiting (once), then
  // arms the due timer (once) and the next look for the signal.
  void Hold(JsonText info, double now) {
    RunEnv* env = run_->env_;
    bool first;
    {
      MutexLock lock(&mu_);
      if (finished_) return;
      first = !holding_;
      holding_ = true;
    }
    if (first) {
      if (env->store != nullptr) {
        NodeRecord rec;
        rec.run_id = run_->run_id_;
        rec.node = run_->wf_.nodes[i_].name;
        rec.status = NodeStatus::kWaiting;
        rec.output_json = *info;
        Slot& slot = run_->slots_[i_];
        {
          MutexLock lock(&slot.mu);
          rec.attempts = slot.attempts;
          rec.started_at = slot.started_wall;
        }
        env->store->SaveNode(std::move(rec));
      }
      if (token_) {
        std::weak_ptr<Waiter> weak = weak_from_this();
        uint64_t sub = token_->Subscribe([weak] {
          if (auto self = weak.lock()) self->PostCheck();
        });
        MutexLock lock(&mu_);
        subscription_ = sub;
      }
    }
    MutexLock lock(&mu_);
    if (finished_) return;
    auto self = shared_from_this();
    if (first && due_ > 0) {
      due_timer_ = env->clock->After(due_ - now, [self] { self->PostCheck(); });
    }
    if (!run_->wf_.nodes[i_].wait->timer()) {
      poll_timer_ = env->clock->After(kSignalPollSeconds, [self] { self->PostCheck(); });
    }
  }

  // From a timer or the cancel token: the next look, on a worker.
  void PostCheck() {
    MutexLock lock(&mu_);
    if (finished_) return;
    auto self = shared_from_this();
    run_->env_->post([self] { self->Check(); });
  }

  void Complete(NodeResult result) {
    NodeCompletion done;
    TimerId timers[2];
    uint64_t subscription;
    {
      MutexLock lock(&mu_);
      if (finished_) return;
      finished_ = true;
      done = std::move(done_);
      timers[0] = due_timer_;
      timers[1] = poll_timer_;
      subscription = subscription_;
    }
    for (TimerId timer : timers) {
      if (timer) run_->env_->clock->Cancel(timer);
    }
    if (subscription && token_) token_->Unsubscribe(subscription);
    done(std::move(result));
  }

  RunState* const run_;
  const int i_;
  const double due_;
  const std::shared_ptr<CancelToken> token_;
  Mutex mu_;
  NodeCompletion done_ GUARDED_BY(mu_);
  bool finished_ GUARDED_BY(mu_) = false;
  bool holding_ GUARDED_BY(mu_) = false;
  TimerId due_timer_ GUARDED_BY(mu_) = 0;
  TimerId poll_timer_ GUARDED_BY(mu_) = 0;
  uint64_t subscription_ GUARDED_BY(mu_) = 0;
};

void RunState::StartWait(int i, NodeCompletion done) {
  const NodeSpec& spec = wf_.nodes[i];
  if (!parent_node_.empty()) {
    // Fallbacks, calls, loops and map items run their workflow to completion
    // within one node of the run, which cannot park part-way.
    std::string where = records_ ? "workflow '" + wf_.name + "' run by node '" + parent_node_ +
                                       "' (keel.call, keel.loop and keel.map run their workflows "
                                       "to completion)"
                                 : "fallback workflow '" + wf_.name +
                                       "' (fallbacks run to completion within their node)";
    done(NodeResult::Failure(
        Status::Error(ErrorKind::kPermanent, "a wait node cannot run inside " + where)));
    return;
  }
  double now = env_->clock->WallNow();
  double due;
  bool first;
  {
    MutexLock lock(&wait_mu_);
    auto [it, inserted] = wait_due_.try_emplace(i, spec.wait->DueAt(now));
    due = it->second;
    first = inserted;
  }
  if (first) {
    // The due time is recorded the first time the wait is reached; parking or
    // holding records it again in the node's waiting record.
    EventData data;
    if (!spec.wait->timer()) data.Add("signal", spec.wait->signal);
    if (due > 0) data.Add("due", due);
    Emit(i, "wait_started", data.Done());
  }
  std::shared_ptr<CancelToken> token;
  {
    Slot& slot = slots_[i];
    MutexLock lock(&slot.mu);
    token = slot.token;
  }
  auto waiter = std::make_shared<Waiter>(this, i, due, std::move(token), std::move(done));
  waiter->Check();
}

void RunState::RestoreWaits(const std::unordered_map<std::string, NodeRecord>& earlier) {
  MutexLock lock(&wait_mu_);
  for (size_t i = 0; i < wf_.nodes.size(); ++i) {
    const std::string& name = wf_.nodes[i].name;
    if (!wf_.nodes[i].wait) continue;
    auto it = earlier.find(name);
    // A wait that failed (timed out) is reached afresh; one that was parked,
    // held, stopped or cut short by a crash keeps the due time it recorded:
    // in its waiting record, else in its wait_started event.
    if (it != earlier.end() && it->second.status == NodeStatus::kFailed) continue;
    WaitInfo info;
    if (it != earlier.end() && it->second.status == NodeStatus::kWaiting &&
        it->second.output_json && ParseWaitInfo(*it->second.output_json, &info)) {
      wait_due_[static_cast<int>(i)] = info.due;
    } else if (env_->history != nullptr) {
      auto due = env_->history->wait_due.find(name);
      if (due != env_->history->wait_due.end()) wait_due_[static_cast<int>(i)] = due->second;
    }
  }
}

}  // namespace keel
