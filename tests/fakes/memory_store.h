#pragma once
// MemoryStore: an in-memory keel::Store for engine tests.
//
// Keeps queued writes in a pending list until Flush() "commits" them, so a
// test can simulate a crash by calling DropUncommitted() (writes that were
// queued but not yet committed vanish, as with kill -9). All methods lock mu_.

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_set>
#include <variant>
#include <vector>

#include "engine/mutex.h"
#include "engine/rerun.h"
#include "engine/store.h"

namespace keel::testing {

class MemoryStore : public Store {
 public:
  struct Finish {
    std::string run_id;
    RunStatus status;
    std::string error;
    double at;
  };
  using Write = std::variant<NodeRecord, EventRecord, Finish>;

  Status CreateRun(const RunRecord& run) override {
    MutexLock lock(&mu_);
    if (runs_.count(run.id)) return Status::Error(ErrorKind::kPermanent, "exists");
    runs_[run.id] = run;
    return Status::Ok();
  }
  Result<ClaimedRun> ClaimRun(
      const RunRecord& run, int64_t expected_epoch,
      const std::function<bool(const Owner&, double)>& owner_alive) override {
    MutexLock lock(&mu_);
    auto it = runs_.find(run.id);
    if (it == runs_.end()) return Status::Error(ErrorKind::kPermanent, "no run");
    if (it->second.epoch != expected_epoch) {
      return Status::Error(ErrorKind::kPermanent, "taken over by another process");
    }
    if (owner_alive(it->second.owner, 0)) return Status::Error(ErrorKind::kPermanent, "alive");
    if (it->second.status == RunStatus::kCancelled || cancel_requested_.count(run.id)) {
      return Status::Error(ErrorKind::kPermanent, "run " + run.id + " was cancelled");
    }
    ClaimedRun claimed;
    claimed.before = it->second;
    for (auto& [key, rec] : nodes_) {
      if (key.first == run.id) claimed.nodes.push_back(rec);
    }
    it->second = run;
    it->second.status = RunStatus::kRunning;
    it->second.epoch = claimed.epoch = claimed.before.epoch + 1;
    return claimed;
  }
  Result<ClaimedRun> ClaimRunForRerun(
      const RunRecord& run, int64_t expected_epoch, const std::string& from,
      const std::vector<std::string>& rerun,
      const std::function<bool(const Owner&, double)>& owner_alive) override {
    MutexLock lock(&mu_);
    auto it = runs_.find(run.id);
    if (it == runs_.end()) return Status::Error(ErrorKind::kPermanent, "no run");
    if (it->second.epoch != expected_epoch) {
      return Status::Error(ErrorKind::kPermanent, "taken over by another process");
    }
    if (owner_alive(it->second.owner, 0)) return Status::Error(ErrorKind::kPermanent, "alive");
    const std::unordered_set<std::string> named(rerun.begin(), rerun.end());
    ClaimedRun claimed;
    claimed.before = it->second;
    for (auto n = nodes_.begin(); n != nodes_.end();) {
      if (n->first.first != run.id || !RecordOfAny(n->first.second, named)) {
        ++n;
      } else if (named.count(n->first.second)) {
        NodeRecord reset;
        reset.run_id = n->second.run_id;
        reset.node = n->second.node;
        reset.attempts = n->second.attempts;
        reset.script_version = n->second.script_version;
        n->second = std::move(reset);  // pending, no output, no error
        ++n;
      } else {
        n = nodes_.erase(n);
      }
    }
    for (auto& [key, rec] : nodes_) {
      if (key.first == run.id) claimed.nodes.push_back(rec);
    }
    EventRecord event{run.id, 0, run.updated_at, "", kRerunEventKind, RerunEventData(from, rerun)};
    event.seq = static_cast<int64_t>(events_.size()) + 1;
    events_.push_back(std::move(event));
    it->second = run;
    it->second.status = RunStatus::kRunning;
    it->second.epoch = claimed.epoch = claimed.before.epoch + 1;
    return claimed;
  }
  Status CreateForkedRun(const RunRecord& run, const std::vector<NodeRecord>& kept) override {
    MutexLock lock(&mu_);
    if (runs_.count(run.id)) return Status::Error(ErrorKind::kPermanent, "exists");
    runs_[run.id] = run;
    for (NodeRecord rec : kept) {
      rec.run_id = run.id;
      rec.script_version = 0;
      nodes_[{run.id, rec.node}] = std::move(rec);
    }
    return Status::Ok();
  }
  Result<std::vector<ScriptVersion>> GetScriptVersions(const std::string& run_id) override {
    MutexLock lock(&mu_);
    auto it = runs_.find(run_id);
    if (it == runs_.end()) return Status::Error(ErrorKind::kPermanent, "no run " + run_id);
    ScriptVersion version;
    version.script_path = it->second.script_path;
    version.script_sha256 = it->second.script_sha256;
    version.script_text = it->second.script_text;
    version.modules = it->second.modules;
    return std::vector<ScriptVersion>{version};
  }
  void SaveNode(NodeRecord node) override { Queue(std::move(node)); }
  void AppendEvent(EventRecord event) override { Queue(std::move(event)); }
  void FinishNode(NodeRecord node, EventRecord event) override {
    MutexLock lock(&mu_);
    log_.push_back(node);
    log_.push_back(event);
    pending_.push_back(std::move(node));
    pending_.push_back(std::move(event));
  }
  void FinishRun(std::string run_id, RunStatus status, std::string error, double at) override {
    Queue(Finish{std::move(run_id), status, std::move(error), at});
  }
  void Heartbeat(std::string, double) override {}
  Status WriteHealth() override {
    MutexLock lock(&mu_);
    return health_;
  }
  // What WriteHealth reports from now on; an error also makes Flush fail.
  void SetWriteHealth(Status health) {
    MutexLock lock(&mu_);
    health_ = std::move(health);
  }
  Status Flush() override {
    MutexLock lock(&mu_);
    if (!health_.ok()) return health_;
    for (auto& w : pending_) Apply(std::move(w));
    pending_.clear();
    return Status::Ok();
  }
  // Forgets writes queued since the last Flush, as a crash would.
  void DropUncommitted() {
    MutexLock lock(&mu_);
    pending_.clear();
  }
  // Every queued write, in queue order, committed or not.
  std::vector<Write> queued() {
    MutexLock lock(&mu_);
    return log_;
  }

  Result<RunRecord> GetRun(const std::string& id) override {
    MutexLock lock(&mu_);
    auto it = runs_.find(id);
    if (it == runs_.end()) return Status::Error(ErrorKind::kPermanent, "no run " + id);
    return it->second;
  }
  Result<std::vector<NodeRecord>> GetNodes(const std::string& run_id) override {
    MutexLock lock(&mu_);
    std::vector<NodeRecord> out;
    for (auto& [key, rec] : nodes_) {
      if (key.first == run_id) out.push_back(rec);
    }
    return out;
  }
  Result<std::vector<EventRecord>> GetEvents(const std::string& run_id) override {
    MutexLock lock(&mu_);
    std::vector<EventRecord> out;
    for (auto& e : events_) {
      if (e.run_id == run_id) out.push_back(e);
    }
    return out;
  }
  Result<std::vector<RunListing>> ListRuns(const RunFilter&) override {
    return std::vector<RunListing>{};
  }
  Result<int64_t> DeleteFinishedBefore(double) override { return int64_t{0}; }
  Result<BreakerSnapshot> UpdateBreaker(
      const std::string& key, const std::function<void(BreakerSnapshot&)>& update) override {
    MutexLock lock(&mu_);
    update(breakers_[key]);
    return breakers_[key];
  }
  Result<std::vector<BreakerRow>> ListBreakers() override {
    MutexLock lock(&mu_);
    std::vector<BreakerRow> out;
    for (auto& [key, snap] : breakers_) out.push_back({key, snap, 0});
    return out;
  }
  Result<int64_t> ResetBreakers(const std::string& key) override {
    MutexLock lock(&mu_);
    if (key.empty()) {
      int64_t n = static_cast<int64_t>(breakers_.size());
      breakers_.clear();
      return n;
    }
    return static_cast<int64_t>(breakers_.erase(key));
  }

  // Signals and cancellation: decided at once, like the SQLite store's
  // synchronous transactions.
  Status SendSignal(const std::string& run_id, const std::string& name,
                    const std::string& data_json, double now) override {
    MutexLock lock(&mu_);
    auto it = runs_.find(run_id);
    if (it == runs_.end()) return Status::Error(ErrorKind::kPermanent, "no run " + run_id);
    RunStatus st = it->second.status;
    if (st == RunStatus::kSucceeded || st == RunStatus::kFailed || st == RunStatus::kDegraded ||
        st == RunStatus::kCancelled) {
      return Status::Error(ErrorKind::kPermanent, "run " + run_id + " finished");
    }
    signals_.push_back({run_id, name, data_json, now, ""});
    return Status::Ok();
  }
  Result<std::optional<std::string>> TakeSignal(const std::string& run_id, const std::string& name,
                                                const std::string& node, double) override {
    MutexLock lock(&mu_);
    ++take_calls_;
    for (auto& signal : signals_) {
      if (signal.run_id == run_id && signal.name == name && signal.taken_by == node) {
        return std::optional<std::string>(signal.data_json);
      }
    }
    for (auto& signal : signals_) {
      if (signal.run_id == run_id && signal.name == name && signal.taken_by.empty()) {
        signal.taken_by = node;
        return std::optional<std::string>(signal.data_json);
      }
    }
    return std::optional<std::string>();
  }
  Result<CancelOutcome> CancelRun(
      const std::string& run_id, double now,
      const std::function<bool(const Owner&, double)>& owner_alive) override {
    MutexLock lock(&mu_);
    auto it = runs_.find(run_id);
    if (it == runs_.end()) return Status::Error(ErrorKind::kPermanent, "no run " + run_id);
    RunStatus st = it->second.status;
    if (st == RunStatus::kSucceeded || st == RunStatus::kFailed || st == RunStatus::kDegraded ||
        st == RunStatus::kCancelled) {
      return Status::Error(ErrorKind::kPermanent, "run " + run_id + " finished");
    }
    cancel_requested_.insert(run_id);
    if (st == RunStatus::kRunning && owner_alive(it->second.owner, 0)) {
      return CancelOutcome::kRequested;
    }
    it->second.status = RunStatus::kCancelled;
    it->second.finished_at = now;
    ++it->second.epoch;
    return CancelOutcome::kCancelled;
  }
  Result<bool> CancelRequested(const std::string& run_id) override {
    MutexLock lock(&mu_);
    return cancel_requested_.count(run_id) > 0;
  }
  // How often TakeSignal was called.
  int take_calls() {
    MutexLock lock(&mu_);
    return take_calls_;
  }

 private:
  struct Signal {
    std::string run_id, name, data_json;
    double sent_at;
    std::string taken_by;
  };
  void Queue(Write w) {
    MutexLock lock(&mu_);
    log_.push_back(w);
    pending_.push_back(std::move(w));
  }
  void Apply(Write w) EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (auto* n = std::get_if<NodeRecord>(&w)) {
      nodes_[{n->run_id, n->node}] = *n;
    } else if (auto* e = std::get_if<EventRecord>(&w)) {
      e->seq = static_cast<int64_t>(events_.size()) + 1;
      events_.push_back(*e);
    } else {
      auto& f = std::get<Finish>(w);
      runs_[f.run_id].status = f.status;
      runs_[f.run_id].error = f.error;
      runs_[f.run_id].finished_at = f.at;
    }
  }

  Mutex mu_;
  Status health_ GUARDED_BY(mu_);
  std::map<std::string, RunRecord> runs_ GUARDED_BY(mu_);
  std::map<std::pair<std::string, std::string>, NodeRecord> nodes_ GUARDED_BY(mu_);
  std::vector<EventRecord> events_ GUARDED_BY(mu_);
  std::vector<Write> pending_ GUARDED_BY(mu_);
  std::vector<Write> log_ GUARDED_BY(mu_);
  std::map<std::string, BreakerSnapshot> breakers_ GUARDED_BY(mu_);
  std::vector<Signal> signals_ GUARDED_BY(mu_);
  std::set<std::string> cancel_requested_ GUARDED_BY(mu_);
  int take_calls_ GUARDED_BY(mu_) = 0;
};

}  // namespace keel::testing
