// RunFrontier: the executor's dependency rules (run_state.cc) applied to a
// run's node records.

#include "engine/run_frontier.h"

#include <string_view>

namespace keel {
namespace {

constexpr std::string_view kNotNeeded = "not needed:";

class FrontierBuilder {
 public:
  FrontierBuilder(const WorkflowSpec& wf, const std::vector<NodeRecord>& records,
                  const std::unordered_set<std::string>& launched)
      : wf_(wf), n_(wf.nodes.size()), deps_(n_), dependents_(n_), state_(n_), launched_(n_) {
    std::unordered_map<std::string_view, int> index;
    for (size_t i = 0; i < n_; ++i) index.emplace(wf.nodes[i].name, int(i));
    for (size_t i = 0; i < n_; ++i) {
      for (const auto& dep : wf.nodes[i].after) {
        auto it = index.find(dep);
        if (it == index.end()) continue;  // Validate refuses such a workflow
        deps_[i].push_back(it->second);
        dependents_[it->second].push_back(int(i));
      }
    }
    for (const NodeRecord& rec : records) {
      auto it = index.find(rec.node);
      if (it == index.end()) continue;
      int i = it->second;
      if (IsSettledStatus(rec.status)) {
        state_[i] = {true, rec.status, rec.error_kind, rec.error_message};
        order_.push_back(i);
      } else {
        launched_[i] = true;  // recorded running or pending: some worker has it
      }
    }
    for (size_t i = 0; i < n_; ++i) {
      if (launched.count(wf.nodes[i].name) && !state_[i].done) launched_[i] = true;
    }
  }

  Frontier Build() {
    Frontier out;
    std::vector<bool> fired(n_, false);
    for (bool changed = true; changed;) {
      changed = false;
      for (size_t i = 0; i < n_; ++i) {
        if (state_[i].done || fired[i]) continue;
        if (launched_[i]) {
          fired[i] = true;
          changed = true;
          continue;
        }
        if (!Fires(int(i))) continue;
        std::string reason = CancelReason(int(i));
        if (reason.empty()) {
          fired[i] = true;
          out.ready.push_back(wf_.nodes[i].name);
        } else {
          Cancel(int(i), reason, &out);
        }
        changed = true;
      }
      // A join that went ahead without a dependency no one else waits for
      // gives it up (RunState::Abandon), and so on upstream.
      // A node another worker runs is given up too (its claim is then
      // superseded and the worker stops it), as the executor cancels a
      // running loser.
      for (size_t d = 0; d < n_; ++d) {
        if (state_[d].done || (fired[d] && !launched_[d]) || dependents_[d].empty()) continue;
        bool wanted = false, left_behind = false;
        std::string join;
        for (int j : dependents_[d]) {
          bool went_ahead = fired[j] || state_[j].done;
          if (went_ahead && wf_.nodes[j].policy.join.kind != JoinPolicy::Kind::kAll) {
            left_behind = true;
            if (join.empty()) join = wf_.nodes[j].name;
            continue;
          }
          if (state_[j].done && state_[j].status == NodeStatus::kCancelled &&
              std::string_view(state_[j].message).substr(0, kNotNeeded.size()) == kNotNeeded) {
            continue;  // given up itself
          }
          wanted = true;
        }
        if (wanted) continue;
        if (left_behind) {
          Cancel(int(d), "not needed: join of '" + join + "' was satisfied without it", &out);
        } else {
          Cancel(int(d), "not needed: its dependents were cancelled", &out);
        }
        changed = true;
      }
    }
    out.settled = true;
    for (size_t i = 0; i < n_; ++i) {
      if (fired[i] && !state_[i].done) out.settled = false;
    }
    if (!out.settled) return out;
    Outcome(&out);
    return out;
  }

 private:
  struct NodeState {
    bool done = false;
    NodeStatus status = NodeStatus::kPending;
    ErrorKind kind = ErrorKind::kNone;
    std::string message;
  };

  bool Fires(int i) const {
    int left = 0, ok = 0;
    for (int d : deps_[i]) {
      if (!state_[d].done || state_[d].status == NodeStatus::kWaiting) {
        ++left;
      } else if (Succeeded(state_[d].status)) {
        ++ok;
      }
    }
    const JoinPolicy& join = wf_.nodes[i].policy.join;
    if (left == 0) return true;
    if (join.kind == JoinPolicy::Kind::kAny) return ok >= 1;
    if (join.kind == JoinPolicy::Kind::kQuorum) return ok >= join.quorum;
    return false;
  }

  // RunState::ResolveDeps: why node i cannot run; empty when it can.
  std::string CancelReason(int i) const {
    const JoinPolicy& join = wf_.nodes[i].policy.join;
    bool all_join = join.kind == JoinPolicy::Kind::kAll;
    std::string reason;
    int succeeded = 0, skipped = 0;
    for (int d : deps_[i]) {
      if (!state_[d].done) continue;
      const std::string& name = wf_.nodes[d].name;
      switch (state_[d].status) {
        case NodeStatus::kSucceeded:
        case NodeStatus::kFallback:
          ++succeeded;
          break;
        case NodeStatus::kSkipped:
          ++skipped;
          break;
        case NodeStatus::kFailed:
          if (!wf_.nodes[d].optional && all_join && reason.empty()) {
            reason = "dependency '" + name + "' failed";
          }
          break;
        default:
          if (all_join && reason.empty()) reason = "dependency '" + name + "' was cancelled";
          break;
      }
    }
    int total = static_cast<int>(deps_[i].size());
    if (reason.empty() && total > 0) {
      if (join.kind == JoinPolicy::Kind::kAny && succeeded == 0 && skipped == 0) {
        reason = "join any: none of its " + std::to_string(total) + " dependencies succeeded";
      } else if (join.kind == JoinPolicy::Kind::kQuorum && succeeded < join.quorum) {
        reason = "join quorum: " + std::to_string(succeeded) + " of " + std::to_string(total) +
                 " dependencies succeeded, " + std::to_string(join.quorum) + " needed";
      }
    }
    return reason;
  }

  void Cancel(int i, const std::string& reason, Frontier* out) {
    state_[i] = {true, NodeStatus::kCancelled, ErrorKind::kCancelled, reason};
    order_.push_back(i);
    out->cancel.push_back({wf_.nodes[i].name, reason});
  }

  // RunState::Excused.
  bool Excused(int i) const {
    if (wf_.nodes[i].optional) return true;
    if (state_[i].status == NodeStatus::kCancelled &&
        std::string_view(state_[i].message).substr(0, kNotNeeded.size()) == kNotNeeded) {
      return true;
    }
    if (dependents_[i].empty()) return false;
    for (int j : dependents_[i]) {
      if (wf_.nodes[j].policy.join.kind == JoinPolicy::Kind::kAll) return false;
      if (state_[j].status == NodeStatus::kCancelled) return false;
    }
    return true;
  }

  // RunState::Status and RunState::Outcome.
  void Outcome(Frontier* out) const {
    bool degraded = false, waiting = false, failed = false;
    for (size_t i = 0; i < n_; ++i) {
      NodeStatus st = state_[i].status;
      waiting = waiting || st == NodeStatus::kWaiting;
      if (st != NodeStatus::kFailed && st != NodeStatus::kCancelled) continue;
      if (!Excused(int(i))) {
        failed = true;
        continue;
      }
      if (st == NodeStatus::kFailed || wf_.nodes[i].optional) degraded = true;
    }
    if (failed) {
      out->status = RunStatus::kFailed;
      for (int i : order_) {
        const NodeState& s = state_[i];
        if ((s.status != NodeStatus::kFailed && s.status != NodeStatus::kCancelled) || Excused(i)) {
          continue;
        }
        out->error = wf_.nodes[i].name + ": " + Status::Error(s.kind, s.message).ToString();
        out->failed_node = i;
        break;
      }
    } else if (waiting) {
      out->status = RunStatus::kWaiting;
    } else {
      out->status = degraded ? RunStatus::kDegraded : RunStatus::kSucceeded;
    }
  }

  const WorkflowSpec& wf_;
  const size_t n_;
  std::vector<std::vector<int>> deps_;
  std::vector<std::vector<int>> dependents_;
  std::vector<NodeState> state_;
  std::vector<bool> launched_;
  std::vector<int> order_;  // nodes in the order they settled
};

}  // namespace

bool IsSettledStatus(NodeStatus status) {
  return status != NodeStatus::kPending && status != NodeStatus::kRunning;
}

Frontier ComputeFrontier(const WorkflowSpec& workflow, const std::vector<NodeRecord>& records,
                         const std::unordered_set<std::string>& launched) {
  return FrontierBuilder(workflow, records, launched).Build();
}

}  // namespace keel
