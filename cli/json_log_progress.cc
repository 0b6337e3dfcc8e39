#include "cli/json_log_progress.h"

#include <csignal>
#include <cstdio>

#include "cli/interrupt_notice.h"
#include "cli/pending_lines.h"
#include "engine/clock.h"
#include "engine/event_data.h"
#include "engine/event_severity.h"
#include "engine/mutex.h"
#include "scripts/log_sink.h"
#include "views/event_json.h"
#include "views/event_text.h"
#include "views/format.h"
#include "views/json_out.h"

namespace keel::cli {
namespace {

// Thread-safe: mu_ guards the run id; pending_ has its own lock.
class JsonLogProgress : public Progress {
 public:
  explicit JsonLogProgress(ProgressOptions options)
      : options_(std::move(options)),
        clock_(options_.clock != nullptr ? options_.clock : SystemClock()),
        pending_(std::make_shared<PendingLines>()) {
    SetLogSink([this](std::string_view text) { Log(text); });
  }
  ~JsonLogProgress() override {
    SetLogSink({});
    pending_->Flush();
  }

  void OnRunStarted(const RunInfo& info) override {
    {
      MutexLock lock(&mu_);
      run_id_ = info.run_id;
    }
    const bool forked = !options_.forked_from.empty();
    EventData event;
    event.Add("workflow", info.workflow)
        .Add("nodes", info.node_count)
        .Add("kept", options_.resuming || forked ? Kept(info) : 0);
    if (forked) event.Add("forked_from", options_.forked_from);
    std::string data = event.Done();
    PendingLines::Add(pending_, clock_,
                      JsonLogLine(SystemClock()->WallNow(), info.run_id, "",
                                  options_.resuming ? "run_resumed" : "run_started", data,
                                  RunBanner(info, options_)));
    pending_->Flush();
    // The notice of an interruption is a line of the log too.
    std::function<void(int)> record = RecordInterrupt(info, options_);
    // It may come after this display is gone: it holds only what it uses.
    ArmInterruptNotice(info.run_id, /*fd=*/-1, clock_,
                       [pending = pending_, record, run_id = info.run_id](int signal_number) {
                         Interrupted(*pending, run_id, signal_number);
                         if (record) record(signal_number);
                       });
  }

  void OnRunFinished(RunStatus status) override {
    SealRunEnd();
    std::string run_id = RunId();
    std::string name(RunStatusName(status));
    Write(SystemClock()->WallNow(), "", "run_finished", EventData().Add("status", name).Done(),
          "run " + run_id + " " + name);
  }

  void Close() override {
    SetLogSink({});
    pending_->Flush();
    DisarmInterruptNotice();
  }

  // Each attempt's start; the recorded node_started and attempt_started
  // events that OnEvent hears are left out for these.
  void OnNodeStarted(std::string_view node, int attempt) override {
    std::string data = EventData().Add("attempt", attempt).Done();
    std::string_view kind = attempt > 1 ? "attempt_started" : "node_started";
    Write(SystemClock()->WallNow(), node, kind, data, DescribeEvent(node, kind, data));
  }

  void OnEvent(std::string_view node, std::string_view kind, std::string_view data_json,
               double ts) override {
    if (kind == "node_started" || kind == "attempt_started" || kind == "checkpoint") return;
    EventRecord event{"", 0, ts, std::string(node), std::string(kind), std::string(data_json)};
    std::string data = BriefEventData(event);
    Write(ts, node, kind, data, DescribeEvent(node, kind, data));
  }

 private:
  int Kept(const RunInfo& info) const {
    return info.restored > 0 ? info.restored : static_cast<int>(options_.kept.size());
  }

  std::string RunId() {
    MutexLock lock(&mu_);
    return run_id_;
  }

  void Write(double ts, std::string_view node, std::string_view kind, std::string_view data,
             const std::string& message) {
    PendingLines::Add(pending_, clock_, JsonLogLine(ts, RunId(), node, kind, data, message));
  }

  // keel.log and print: one line of kind "log" per line of `text`; a
  // keel.log line's "[NODE] " names its node.
  void Log(std::string_view text) {
    double now = SystemClock()->WallNow();
    std::string lines;
    std::string run_id = RunId();
    while (!text.empty()) {
      size_t end = text.find('\n');
      std::string_view line = text.substr(0, end);
      std::string_view node;
      if (size_t close = line.find("] "); line.starts_with('[') && close != line.npos) {
        node = line.substr(1, close - 1);
        line.remove_prefix(close + 2);
        if (node == "keel") node = "";  // keel.log outside any node
      }
      lines += JsonLogLine(now, run_id, node, "log", "{}", line);
      if (end == std::string_view::npos) break;
      text.remove_prefix(end + 1);
    }
    PendingLines::Add(pending_, clock_, lines);
  }

  // Written straight to stderr, after what `pending` holds: the process is
  // about to die of the signal.
  static void Interrupted(PendingLines& pending, const std::string& run_id, int signal_number) {
    pending.Flush();
    const char* name = signal_number == SIGINT    ? "SIGINT"
                       : signal_number == SIGTERM ? "SIGTERM"
                                                  : "signal";
    std::string line =
        JsonLogLine(SystemClock()->WallNow(), run_id, "", "run_interrupted",
                    EventData().Add("signal", name).Add("number", signal_number).Done(),
                    std::string("interrupted; resume with: ") + ResumeCommandFor(run_id));
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fflush(stderr);
  }

  const ProgressOptions options_;
  Clock* const clock_;
  Mutex mu_;
  std::string run_id_ GUARDED_BY(mu_);
  const std::shared_ptr<PendingLines> pending_;
};

}  // namespace

std::unique_ptr<Progress> MakeJsonLogProgress(ProgressOptions options) {
  return std::make_unique<JsonLogProgress>(std::move(options));
}

std::string JsonLogLine(double ts, std::string_view run_id, std::string_view node,
                        std::string_view kind, std::string_view data_json,
                        std::string_view message) {
  JsonOut out;
  out.BeginObject();
  out.Key("ts").String(FormatIsoUtc(ts));
  out.Key("run_id").String(run_id);
  out.Key("node").StringOrNull(std::string(node));
  out.Key("kind").String(kind);
  out.Key("severity").String(SeverityName(EventSeverity(kind, data_json)));
  out.Key("message").String(message);
  out.Key("data").Raw(std::string(data_json));
  out.EndObject();
  return out.Text() + "\n";
}

}  // namespace keel::cli
