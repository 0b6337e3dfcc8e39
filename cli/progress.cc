#include "cli/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <unordered_set>

#include "cli/format.h"
#include "cli/interrupt_notice.h"
#include "cli/live_progress.h"
#include "engine/clock.h"

namespace keel::cli {
namespace {

// LineProgress: one timestamped line on stderr per node event, for logs and
// pipes. Thread-safe: mu_ serializes the lines.
class LineProgress : public Progress {
 public:
  explicit LineProgress(ProgressOptions options) : options_(std::move(options)) {}

  void OnRunStarted(const RunInfo& info) override {
    std::lock_guard<std::mutex> lock(mu_);
    std::fprintf(stderr, "%s\n", RunBanner(info, options_).c_str());
    std::fflush(stderr);
    ArmInterruptNotice(info.run_id, STDERR_FILENO);
  }

  void Close() override { DisarmInterruptNotice(); }

  void OnNodeStarted(std::string_view node, int attempt) override {
    std::string line = fmt::format("{} started", node);
    if (attempt > 1) line += fmt::format(" (attempt {})", attempt);
    std::lock_guard<std::mutex> lock(mu_);
    started_.emplace(node);
    Print(line);
  }

  void OnNodeFinished(std::string_view node, const NodeResult& result, double seconds) override {
    std::lock_guard<std::mutex> lock(mu_);
    // A node kept from before is reported by the banner, not line by line.
    if (options_.kept.count(std::string(node)) && !started_.count(std::string(node))) return;
    std::string took = FormatSeconds(seconds);
    switch (result.status) {
      case NodeStatus::kSucceeded:
        Print(fmt::format("{} succeeded in {}", node, took));
        break;
      case NodeStatus::kFallback:
        Print(fmt::format("{} succeeded by fallback in {}", node, took));
        break;
      case NodeStatus::kFailed:
        // First line only: the traceback is in the run's error and `keel show`.
        Print(fmt::format("{} failed in {}: {}", node, took, FirstLine(result.error.ToString())));
        break;
      case NodeStatus::kSkipped:
        Print(fmt::format("{} skipped", node));
        break;
      case NodeStatus::kCancelled:
        Print(fmt::format("{} cancelled: {}", node, OneLine(result.error.message())));
        break;
      default:
        Print(fmt::format("{} {}", node, NodeStatusName(result.status)));
        break;
    }
  }

 private:
  // Requires mu_.
  void Print(const std::string& line) {
    std::fprintf(stderr, "%s %s\n", FormatClockTime(SystemClock()->WallNow()).c_str(),
                 line.c_str());
    std::fflush(stderr);
  }

  const ProgressOptions options_;
  std::mutex mu_;
  std::unordered_set<std::string> started_;  // guarded by mu_
};

bool StderrIsTerminal() {
  if (!isatty(STDERR_FILENO)) return false;
  const char* term = std::getenv("TERM");
  return term != nullptr && *term != '\0' && std::strcmp(term, "dumb") != 0;
}

}  // namespace

std::string RunBanner(const RunInfo& info, const ProgressOptions& options) {
  if (options.resuming) {
    int kept = info.restored > 0 ? info.restored : static_cast<int>(options.kept.size());
    return fmt::format("run {} resumed: {} of {} nodes kept", info.run_id, kept, info.node_count);
  }
  return fmt::format("run {} started: workflow {} ({} nodes)", info.run_id, info.workflow,
                     info.node_count);
}

std::unique_ptr<Progress> MakeProgress(const WorkflowSpec& workflow, ProgressOptions options) {
  if (StderrIsTerminal()) return std::make_unique<LiveProgress>(workflow, std::move(options));
  return std::make_unique<LineProgress>(std::move(options));
}

}  // namespace keel::cli
