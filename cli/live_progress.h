#pragma once
// LiveProgress: the terminal display of a run. One status line per node
// (spinner and elapsed time while running, then the outcome) and a summary
// line, redrawn in place with ANSI escapes by a ticker thread at most ten
// times a second; the final state stays on screen after Close().
//
// While the display is up, other output on stderr (keel.log lines) is
// captured and printed above the frame.
//
// Thread-safe: callbacks from any thread update the state under mu_; only the
// ticker thread and Close() write to the terminal, also under mu_.

#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "cli/progress.h"
#include "cli/stderr_capture.h"
#include "engine/mutex.h"

namespace keel::cli {

class LiveProgress : public Progress {
 public:
  LiveProgress(const WorkflowSpec& workflow, ProgressOptions options);
  ~LiveProgress() override;

  void OnRunStarted(const RunInfo& info) override;
  void OnNodeStarted(std::string_view node, int attempt) override;
  void OnNodeFinished(std::string_view node, const NodeResult& result, double seconds) override;
  void OnRunFinished(RunStatus status) override;
  void Close() override;
  void OnMapItems(std::string_view map, const std::string& counts, bool final) override;
  // Breaker transitions, as lines above the frame.
  void OnEvent(std::string_view node, std::string_view kind, std::string_view data_json,
               double ts) override;

 private:
  struct NodeView {
    NodeStatus status = NodeStatus::kPending;
    bool kept = false;  // kept from the earlier attempt of the run
    int attempt = 0;
    double started = 0;  // monotonic seconds, while running
    double seconds = 0;  // once finished
    std::string detail;  // error or cancellation reason
    std::string items;   // a map's item counts
  };

  void Tick();
  // The lines of one frame for a terminal `width` columns wide and at most
  // `height` lines tall. Requires mu_.
  std::vector<std::string> Render(int width, int height, double now) const
      EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string RenderNode(size_t i, int width, size_t name_width, double now) const
      EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string Summary(int width, double now) const EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Replaces the previous frame with a new one. Requires mu_.
  void Draw() EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const WorkflowSpec& workflow_;
  const ProgressOptions options_;
  const bool color_;
  const bool unicode_;
  // Node name -> position in workflow_.nodes; const after construction.
  std::unordered_map<std::string, size_t> index_;

  Mutex mu_;
  CondVar wake_;
  std::vector<NodeView> nodes_ GUARDED_BY(mu_);  // indexed like workflow_.nodes
  bool running_ GUARDED_BY(mu_) = false;         // between OnRunStarted and Close
  bool closed_ GUARDED_BY(mu_) = false;
  bool dirty_ GUARDED_BY(mu_) = false;     // state changed since the last frame
  bool finished_ GUARDED_BY(mu_) = false;  // OnRunFinished was called
  RunStatus final_status_ GUARDED_BY(mu_) = RunStatus::kRunning;
  double run_started_ GUARDED_BY(mu_) = 0;         // monotonic seconds
  int drawn_lines_ GUARDED_BY(mu_) = 0;            // height of the frame on screen
  int frame_ GUARDED_BY(mu_) = 0;                  // spinner phase
  std::vector<std::string> logs_ GUARDED_BY(mu_);  // captured lines not yet printed
  std::unique_ptr<StderrCapture> capture_;        // set under mu_ by OnRunStarted
  std::thread ticker_;
};

}  // namespace keel::cli
