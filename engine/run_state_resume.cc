// RunState on resume: which recorded nodes a run keeps, and which of the
// others no dependent needs any more.

#include <unordered_set>

#include "engine/event_data.h"
#include "engine/run_state.h"

namespace keel {

std::vector<int> RunState::Prepare(const std::unordered_map<std::string, NodeRecord>& earlier) {
  for (size_t i = 0; i < slots_.size() && !earlier.empty(); ++i) {
    auto it = earlier.find(RecordName(static_cast<int>(i)));
    if (it == earlier.end()) continue;
    Slot& slot = slots_[i];
    {
      // No other thread sees the slot yet; the lock is for the analysis.
      MutexLock lock(&slot.mu);
      slot.attempts = it->second.attempts;
      slot.attempts_before = it->second.attempts;  // a resume brings a fresh retry budget
    }
    if (!IsKeptOnResume(it->second.status)) continue;
    slot.kept = true;
    slot.result = NodeResult{it->second.status, nullptr, Status::Ok()};
    if (it->second.output_json) slot.result.output = MakeJson(*it->second.output_json);
    slot.done.store(true, std::memory_order_relaxed);
    slot.fired.store(true, std::memory_order_relaxed);
  }
  if (env_->history != nullptr) {
    // Checkpoints of an earlier process: the run's own nodes' by name, a
    // fallback workflow's by the node it runs for, the workflow and its node.
    for (size_t i = 0; i < wf_.nodes.size(); ++i) {
      const std::string& name = wf_.nodes[i].name;
      if (records_) {
        // Attempts an earlier process started but never recorded (it died
        // mid-node): the count goes on from them, the retry budget is fresh.
        auto started = env_->history->attempts.find(RecordName(static_cast<int>(i)));
        if (started != env_->history->attempts.end()) {
          Slot& slot = slots_[i];
          MutexLock lock(&slot.mu);
          if (started->second > slot.attempts) {
            slot.attempts = started->second;
            slot.attempts_before = started->second;
          }
        }
      }
      auto it = env_->history->journals.find(
          records_ ? RecordName(static_cast<int>(i))
                   : FallbackJournalKey(parent_node_, wf_.name, name));
      if (it == env_->history->journals.end()) continue;
      Slot& slot = slots_[i];
      MutexLock lock(&slot.mu);
      slot.journal = it->second;
    }
  }
  RestoreWaits(earlier);
  std::vector<bool> needed = NeededOnResume(earlier);
  std::vector<int> ready;
  int remaining = 0;
  for (size_t i = 0; i < slots_.size(); ++i) {
    Slot& slot = slots_[i];
    if (slot.kept) continue;
    ++remaining;
    if (!needed[i]) {
      // Launched at once only to be recorded cancelled, as a clean run would.
      auto it = earlier.find(RecordName(static_cast<int>(i)));
      bool recorded = it != earlier.end() && it->second.status == NodeStatus::kCancelled &&
                      it->second.error_message.starts_with("not needed:");
      slot.unneeded = true;
      {
        MutexLock lock(&slot.mu);
        slot.abandoned = true;
        slot.abandon_reason = recorded ? it->second.error_message
                                       : "not needed: every node that depends on it finished "
                                         "before the run was resumed";
      }
      slot.fired.store(true, std::memory_order_relaxed);
      ready.push_back(static_cast<int>(i));
    }
    int pending = 0, succeeded = 0;
    for (int d : slot.deps) {
      if (!slots_[d].kept) {
        ++pending;
      } else if (Succeeded(slots_[d].result.status)) {
        ++succeeded;
      }
    }
    int live_dependents = 0, needing = 0;
    for (int j : slot.dependents) {
      live_dependents += slots_[j].kept ? 0 : 1;
      needing += !slots_[j].kept && needed[j] ? 1 : 0;
    }
    slot.pending.store(pending, std::memory_order_relaxed);
    slot.dep_succeeded.store(succeeded, std::memory_order_relaxed);
    slot.consumers.store(live_dependents, std::memory_order_relaxed);
    slot.needed_by.store(needing, std::memory_order_relaxed);
    const JoinPolicy& join = wf_.nodes[i].policy.join;
    bool ready_now = pending == 0 || (join.kind == JoinPolicy::Kind::kAny && succeeded >= 1) ||
                     (join.kind == JoinPolicy::Kind::kQuorum && succeeded >= join.quorum);
    if (ready_now && needed[i]) {
      slot.fired.store(true, std::memory_order_relaxed);
      ready.push_back(static_cast<int>(i));
    }
  }
  remaining_.store(remaining, std::memory_order_relaxed);
  return ready;
}

std::vector<bool> RunState::NeededOnResume(
    const std::unordered_map<std::string, NodeRecord>& earlier) const {
  const size_t n = slots_.size();
  std::vector<bool> needed(n, true);
  bool any_kept = false;
  for (const Slot& slot : slots_) any_kept = any_kept || slot.kept;
  if (!any_kept) return needed;
  // A failed node runs again (resuming a degraded run retries its optional
  // failures), so only nodes that never finished can be found not needed.
  auto candidate = [&](size_t i) {
    if (slots_[i].kept || slots_[i].dependents.empty()) return false;
    auto it = earlier.find(RecordName(static_cast<int>(i)));
    return it == earlier.end() || it->second.status != NodeStatus::kFailed;
  };
  // Decided dependents first: repeat until nothing changes (the DAG is
  // acyclic, so this ends after at most one pass per level).
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t i = 0; i < n; ++i) {
      if (!needed[i] || !candidate(i)) continue;
      bool wanted = false;
      for (int j : slots_[i].dependents) wanted = wanted || (!slots_[j].kept && needed[j]);
      if (!wanted) {
        needed[i] = false;
        changed = true;
      }
    }
  }
  return needed;
}

}  // namespace keel
