// MapRun: the items of a keel.map node, created lazily as earlier ones
// finish, each a child RunState recorded as `m[k]` (and, for a map of
// workflows, its nodes as `m[k]/name`).

#include <cmath>

#include "engine/dynamic_run.h"
#include "engine/event_data.h"

namespace keel {
namespace {

const std::unordered_map<std::string, NodeRecord>& Earlier(const RunEnv* env) {
  static const std::unordered_map<std::string, NodeRecord> kNone;
  return env->earlier ? *env->earlier : kNone;
}

// Writes (4 or so per item) the store may have queued before a map holds
// back its next items: a few MB, and enough to keep the writer's batches full.
constexpr uint64_t kMaxBacklog = 16384;
constexpr double kBacklogPoll = 0.002;  // seconds between looks while nothing runs

}  // namespace

MapRun::MapRun(RunState* parent, int node, JsonText list,
               std::vector<std::pair<size_t, size_t>> spans)
    : parent_(parent),
      node_(node),
      dyn_(*parent->wf_.nodes[node].dynamic),
      list_(std::move(list)),
      spans_(std::move(spans)),
      deps_([&] {
        MutexLock lock(&parent->slots_[node].mu);
        return parent->slots_[node].ctx->deps;
      }()),
      window_(dyn_.max_concurrency > 0 ? static_cast<size_t>(dyn_.max_concurrency)
                                       : static_cast<size_t>(kDefaultMapWindow)),
      allowed_failures_(static_cast<size_t>(
          std::floor(dyn_.tolerate * static_cast<double>(spans_.size()) + 1e-9))),
      prefix_(parent->RecordName(node)) {
  if (!dyn_.workflow.empty() && parent_->env_->options->library) {
    for (const auto& wf : *parent_->env_->options->library) {
      if (wf.name == dyn_.workflow) workflow_ = &wf;
    }
  }
  MutexLock lock(&mu_);
  outputs_.resize(spans_.size());
}

std::string MapRun::ItemName(size_t k) const { return prefix_ + "[" + std::to_string(k + 1) + "]"; }

void MapRun::Begin() {
  parent_->Emit(node_, "map_started",
                EventData()
                    .Add("items", static_cast<double>(spans_.size()))
                    .Add("max_concurrency", static_cast<double>(window_))
                    .Add("tolerate", dyn_.tolerate)
                    .Done());
  Pump();
}

void MapRun::Pump() {
  RunEnv* env = parent_->env_;
  const auto& earlier = Earlier(env);
  while (true) {
    size_t k;
    std::string name;
    {
      MutexLock lock(&mu_);
      if (!failing_ && env->stopped.load(std::memory_order_acquire)) {
        failing_ = true;
        MutexLock spend(&env->spend_mu);
        stop_reason_ = "run stopped: " + env->stop_reason;
      }
      if (!failing_ && next_ < spans_.size() && in_flight_ < window_ && HoldBack()) return;
      if (failing_ || next_ >= spans_.size() || in_flight_ >= window_) {
        if (in_flight_ > 0 || completed_) return;
        if (!failing_ && next_ < spans_.size()) return;
        completed_ = true;
        break;
      }
      k = next_++;
      name = ItemName(k);
      auto it = earlier.find(name);
      if (it != earlier.end() && IsKeptOnResume(it->second.status)) {
        // Recorded by an earlier attempt of the run: not run again.
        outputs_[k] = it->second.output_json ? MakeJson(*it->second.output_json) : nullptr;
        ++succeeded_;
        ++kept_;
        continue;
      }
      ++in_flight_;
    }
    StartItem(k, name);
  }
  Complete();  // last: the node's state may go with it
}

bool MapRun::HoldBack() {
  RunEnv* env = parent_->env_;
  if (env->store == nullptr || env->store->Backlog() <= kMaxBacklog) return false;
  if (in_flight_ > 0 || waiting_) return true;  // a finishing item or the timer looks again
  waiting_ = true;
  env->reserve();
  env->clock->After(kBacklogPoll, [this, env] {
    env->post([this] {
      {
        MutexLock lock(&mu_);
        waiting_ = false;
      }
      Pump();
    });
    env->release();
  });
  return true;
}

void MapRun::StartItem(size_t k, const std::string& name) {
  RunEnv* env = parent_->env_;
  const auto& [begin, end] = spans_[k];
  JsonText item = MakeJson(list_->substr(begin, end - begin));
  std::shared_ptr<RunState> child;
  if (workflow_ != nullptr) {
    std::string params = "{\"item\":" + *item + ",\"index\":" + std::to_string(k + 1) + "}";
    child = std::make_shared<RunState>(
        *workflow_, parent_->run_id_, MergeJsonObjects(workflow_->params, MakeJson(params)), env,
        parent_->depth_, prefix_, std::vector<std::pair<std::string, JsonText>>{},
        [this, k](RunState& c) { ItemDone(k, &c); });
    child->SetFrame(name + "/", nullptr, 0);
    if (env->observer) env->observer->OnNodeStarted(name, 1);
  } else {
    child = std::make_shared<RunState>(*dyn_.item, parent_->run_id_, parent_->params_, env,
                                       parent_->depth_, prefix_, deps_,
                                       [this, k](RunState& c) { ItemDone(k, &c); });
    child->SetFrame(name, std::move(item), static_cast<int>(k + 1));
  }
  RunState* raw = child.get();
  {
    MutexLock lock(&mu_);
    live_.emplace(raw, std::move(child));
  }
  std::vector<int> ready = raw->Prepare(Earlier(env));
  if (raw->remaining_.load(std::memory_order_acquire) == 0) {
    ItemDone(k, raw);  // every node of the item was recorded already
    return;
  }
  for (int r : ready) env->launch(raw, r);
}

void MapRun::ItemDone(size_t k, RunState* child) {
  RunEnv* env = parent_->env_;
  NodeResult result;
  if (workflow_ != nullptr) {
    RunStatus status = child->Status();
    if (status == RunStatus::kFailed) {
      result = NodeResult::Failure(ChildFailure(*child));
    } else {
      JsonText out = child->OutputOf(OutputNode(*workflow_));
      result = NodeResult::Success(out ? out : MakeJson("null"));
      if (status == RunStatus::kDegraded) parent_->degraded_.store(true, std::memory_order_release);
    }
    // The item as a whole is recorded too, so a resume skips it in one look.
    if (env->store) {
      double now = env->clock->WallNow();
      NodeRecord rec;
      rec.run_id = parent_->run_id_;
      rec.node = ItemName(k);
      rec.status = result.status;
      rec.attempts = 1;
      if (result.output) rec.output_json = *result.output;
      rec.error_kind = result.error.kind();
      rec.error_message = result.error.message();
      rec.finished_at = now;
      EventData data;
      if (!result.error.ok()) {
        data.Add("kind", ErrorKindName(result.error.kind())).Add("message", result.error.message());
      }
      EventRecord event{parent_->run_id_, 0, now, ItemName(k),
                        result.error.ok() ? "node_succeeded" : "node_failed", data.Done()};
      if (env->observer) {
        env->observer->OnNodeFinished(ItemName(k), result, 0);
        env->observer->OnEvent(event.node, event.kind, event.data_json, now);
      }
      env->store->FinishNode(std::move(rec), std::move(event));
    }
  } else {
    const NodeResult& r = child->slots_[0].result;
    result = NodeResult{r.status, r.output, r.error};
  }
  std::vector<std::shared_ptr<RunState>> to_stop;
  std::shared_ptr<RunState> retired;
  bool ok = Succeeded(result.status) || result.status == NodeStatus::kSkipped;
  {
    MutexLock lock(&mu_);
    --in_flight_;
    auto it = live_.find(child);
    if (it != live_.end()) {
      retired = std::move(it->second);
      live_.erase(it);
    }
    if (ok) {
      ++succeeded_;
      outputs_[k] = result.output;
    } else if (failing_ && result.status == NodeStatus::kCancelled) {
      ++cancelled_;  // stopped because others failed: not a failure of its own
    } else {
      ++failed_;
      // The failure of the first item in list order among those that failed.
      if (first_error_.ok() || k < first_error_index_) {
        first_error_ =
            Status::Error(result.error.kind(), ItemName(k) + ": " + result.error.message());
        first_error_index_ = k;
      }
      if (failed_ > allowed_failures_ && !failing_) {
        failing_ = true;
        for (auto& [raw, state] : live_) to_stop.push_back(state);
      }
    }
  }
  // The child may still be unwinding from the call that got here: it goes
  // on a worker, once nothing holds it.
  if (retired) env->post([retired] {});
  for (auto& state : to_stop) {
    state->StopAll("not needed: map '" + prefix_ + "' failed");
  }
  to_stop.clear();
  Pump();
}

void MapRun::StopAll(const std::string& reason) {
  std::vector<std::shared_ptr<RunState>> to_stop;
  {
    MutexLock lock(&mu_);
    if (!failing_) {
      failing_ = true;
      stop_reason_ = reason;
    }
    for (auto& [raw, state] : live_) to_stop.push_back(state);
  }
  for (auto& state : to_stop) state->StopAll(reason);
}

void MapRun::Complete() {
  RunState* parent = parent_;
  int node = node_;
  NodeResult result;
  size_t total = spans_.size();
  {
    MutexLock lock(&mu_);
    EventData data;
    data.Add("items", static_cast<double>(total))
        .Add("succeeded", static_cast<double>(succeeded_))
        .Add("failed", static_cast<double>(failed_))
        .Add("cancelled", static_cast<double>(cancelled_))
        .Add("kept", static_cast<double>(kept_));
    parent->Emit(node, "map_finished", data.Done());
    if (failing_) {
      if (failed_ > allowed_failures_) {
        std::string counts =
            " (" + std::to_string(failed_) + " of " + std::to_string(total) + " items failed";
        counts +=
            allowed_failures_ ? ", " + std::to_string(allowed_failures_) + " tolerated)" : ")";
        result = NodeResult::Failure(
            Status::Error(first_error_.kind(), first_error_.message() + counts));
      } else {
        result = NodeResult{NodeStatus::kCancelled, nullptr,
                            Status::Error(ErrorKind::kCancelled, stop_reason_)};
      }
    } else {
      std::string out = "[";
      for (size_t k = 0; k < total; ++k) {
        if (k) out += ',';
        out += outputs_[k] ? *outputs_[k] : "null";
      }
      out += ']';
      outputs_.clear();
      outputs_.shrink_to_fit();
      result = NodeResult::Success(MakeJson(std::move(out)));
      if (failed_ > 0) parent->degraded_.store(true, std::memory_order_release);
    }
  }
  parent->Finish(node, std::move(result));
}

}  // namespace keel
