#include "cli/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_set>

#include "cli/interrupt_notice.h"
#include "cli/json_log_progress.h"
#include "cli/live_progress.h"
#include "cli/map_progress.h"
#include "cli/pending_lines.h"
#include "cli/wait_hint.h"
#include "engine/clock.h"
#include "engine/mutex.h"
#include "scripts/log_sink.h"
#include "views/event_text.h"
#include "views/format.h"

namespace keel::cli {
namespace {

// LineProgress: one timestamped line on stderr per node event, for logs and
// pipes. Lines are stamped when the event happens and written by a timer of
// the options' clock within PendingLines::kFlushDelay, batched. Thread-safe: mu_ serializes the
// events; pending_ has its own lock.
class LineProgress : public Progress {
 public:
  explicit LineProgress(ProgressOptions options)
      : options_(std::move(options)),
        clock_(options_.clock != nullptr ? options_.clock : SystemClock()),
        pending_(std::make_shared<PendingLines>()) {
    // keel.log and print lines join the same queue, so that they come out
    // in order with the progress lines around them.
    SetLogSink([lines = pending_, clock = clock_](std::string_view text) {
      PendingLines::Add(lines, clock, text);
    });
  }
  ~LineProgress() override {
    SetLogSink({});
    pending_->Flush();
  }

  void OnRunStarted(const RunInfo& info) override {
    MutexLock lock(&mu_);
    std::fprintf(stderr, "%s\n", RunBanner(info, options_).c_str());
    std::fflush(stderr);
    ArmInterruptNotice(info.run_id, STDERR_FILENO, clock_, RecordInterrupt(info, options_));
  }

  // The run's final status is queued next: a signal from now on must not
  // record it interrupted.
  void OnRunFinished(RunStatus) override { SealRunEnd(); }

  void Close() override {
    SetLogSink({});
    pending_->Flush();
    DisarmInterruptNotice();
  }

  void OnNodeStarted(std::string_view node, int attempt) override {
    std::string line = fmt::format("{} started", node);
    if (attempt > 1) line += fmt::format(" (attempt {})", attempt);
    MutexLock lock(&mu_);
    started_.emplace(node);
    Print(line);
  }

  void OnMapItems(std::string_view map, const std::string& counts, bool final) override {
    if (!final) return;
    MutexLock lock(&mu_);
    Print(fmt::format("{}  {}", map, counts));
  }

  void OnEvent(std::string_view node, std::string_view kind, std::string_view data_json,
               double) override {
    if (!IsBreakerTransition(kind)) return;
    MutexLock lock(&mu_);
    Print(DescribeEvent(node, kind, data_json));
  }

  void OnNodeFinished(std::string_view node, const NodeResult& result, double seconds) override {
    MutexLock lock(&mu_);
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
      case NodeStatus::kWaiting:
        Print(fmt::format("{} waiting for {}", node,
                          result.output ? DescribeWait(*result.output, SystemClock()->WallNow())
                                        : "a signal or a timer"));
        break;
      default:
        Print(fmt::format("{} {}", node, NodeStatusName(result.status)));
        break;
    }
  }

 private:
  // Requires mu_.
  void Print(const std::string& line) EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::string stamped = FormatClockTime(SystemClock()->WallNow()) + " " + line + "\n";
    PendingLines::Add(pending_, clock_, stamped);
  }

  const ProgressOptions options_;
  Clock* const clock_;
  Mutex mu_;
  std::unordered_set<std::string> started_ GUARDED_BY(mu_);
  const std::shared_ptr<PendingLines> pending_;
};

bool StderrIsTerminal() {
  if (!isatty(STDERR_FILENO)) return false;
  const char* term = std::getenv("TERM");
  return term != nullptr && *term != '\0' && std::strcmp(term, "dumb") != 0;
}

}  // namespace

std::function<void(int)> RecordInterrupt(const RunInfo& info, const ProgressOptions& options) {
  if (!options.on_interrupt) return {};
  return [record = options.on_interrupt, run_id = info.run_id](int signal_number) {
    record(run_id, signal_number);
  };
}

std::string RunBanner(const RunInfo& info, const ProgressOptions& options) {
  if (options.resuming) {
    int kept = info.restored > 0 ? info.restored : static_cast<int>(options.kept.size());
    return fmt::format("run {} resumed: {} of {} nodes kept", info.run_id, kept, info.node_count);
  }
  return fmt::format("run {} started: workflow {} ({} nodes)", info.run_id, info.workflow,
                     info.node_count);
}

std::unique_ptr<Progress> MakeProgress(const WorkflowSpec& workflow, ProgressOptions options) {
  if (options.json_lines) return MakeJsonLogProgress(std::move(options));
  if (StderrIsTerminal()) {
    return CollapseMapItems(std::make_unique<LiveProgress>(workflow, std::move(options)));
  }
  return CollapseMapItems(std::make_unique<LineProgress>(std::move(options)));
}

}  // namespace keel::cli
