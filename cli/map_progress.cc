#include "cli/map_progress.h"

#include <fmt/format.h>

#include <unordered_map>

#include "engine/clock.h"
#include "engine/dynamic_node.h"
#include "engine/mutex.h"

namespace keel::cli {
namespace {

class MapProgress final : public Progress {
 public:
  explicit MapProgress(std::unique_ptr<Progress> inner) : inner_(std::move(inner)) {}

  void OnRunStarted(const RunInfo& info) override { inner_->OnRunStarted(info); }
  void OnRunFinished(RunStatus status) override { inner_->OnRunFinished(status); }
  void Close() override { inner_->Close(); }
  // Events pass through, items' too: the displays show only a few kinds.
  void OnEvent(std::string_view node, std::string_view kind, std::string_view data_json,
               double ts) override {
    inner_->OnEvent(node, kind, data_json, ts);
  }

  void OnNodeStarted(std::string_view node, int attempt) override {
    std::string_view map;
    bool is_item = false;
    if (!SplitItemName(node, &map, &is_item)) return inner_->OnNodeStarted(node, attempt);
    if (!is_item || attempt > 1) return;
    std::string counts;
    {
      MutexLock lock(&mu_);
      Counts& c = counts_[std::string(map)];
      ++c.running;
      if (!Due(&c)) return;
      counts = ItemCounts(0, c.succeeded, c.failed, c.cancelled, c.running);
    }
    inner_->OnMapItems(map, counts, false);
  }

  void OnNodeFinished(std::string_view node, const NodeResult& result, double seconds) override {
    std::string_view map;
    bool is_item = false;
    if (SplitItemName(node, &map, &is_item)) {
      if (!is_item) return;
      std::string counts;
      {
        MutexLock lock(&mu_);
        Counts& c = counts_[std::string(map)];
        if (c.running > 0) --c.running;
        bool ok = Succeeded(result.status) || result.status == NodeStatus::kSkipped;
        ++(ok ? c.succeeded : result.status == NodeStatus::kCancelled ? c.cancelled : c.failed);
        if (!Due(&c)) return;
        counts = ItemCounts(0, c.succeeded, c.failed, c.cancelled, c.running);
      }
      inner_->OnMapItems(map, counts, false);
      return;
    }
    Counts c;
    bool is_map = false;
    {
      MutexLock lock(&mu_);
      auto it = counts_.find(std::string(node));
      if (it != counts_.end()) {
        c = it->second;
        is_map = true;
        counts_.erase(it);
      }
    }
    std::vector<std::pair<size_t, size_t>> spans;
    if (is_map) {
      size_t total = c.succeeded + c.failed + c.cancelled;
      if (result.output && SplitJsonArray(*result.output, &spans)) {
        total = std::max(total, spans.size());
      }
      size_t kept = total - std::min(total, c.succeeded + c.failed + c.cancelled);
      std::string counts = ItemCounts(total, c.succeeded + kept, c.failed, c.cancelled, 0);
      if (kept > 0) counts += fmt::format(" ({} kept)", kept);
      inner_->OnMapItems(node, counts, false);
      inner_->OnNodeFinished(node, result, seconds);
      inner_->OnMapItems(node, counts, true);
      return;
    }
    inner_->OnNodeFinished(node, result, seconds);
  }

 private:
  struct Counts {
    size_t succeeded = 0;
    size_t failed = 0;
    size_t cancelled = 0;
    size_t running = 0;
    double shown = -1;  // monotonic seconds the counts were last passed on
  };
  // Running counts go to the display at most every kCountsInterval: a map
  // of 100k items would otherwise format 200k lines nobody sees.
  static constexpr double kCountsInterval = 0.05;
  static bool Due(Counts* c) {
    double now = SystemClock()->Now();
    if (c->shown >= 0 && now - c->shown < kCountsInterval) return false;
    c->shown = now;
    return true;
  }
  const std::unique_ptr<Progress> inner_;
  Mutex mu_;
  std::unordered_map<std::string, Counts> counts_ GUARDED_BY(mu_);  // by map
};

}  // namespace

std::unique_ptr<Progress> CollapseMapItems(std::unique_ptr<Progress> inner) {
  return std::make_unique<MapProgress>(std::move(inner));
}

}  // namespace keel::cli
