#include "cli/live_progress.h"

#include <fmt/format.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "cli/interrupt_notice.h"
#include "cli/wait_hint.h"
#include "engine/clock.h"
#include "views/event_text.h"
#include "views/format.h"

namespace keel::cli {
namespace {

constexpr auto kFrameInterval = std::chrono::milliseconds(100);
constexpr size_t kMaxNameWidth = 32;

constexpr const char* kGreen = "\x1b[32m";
constexpr const char* kRed = "\x1b[31m";
constexpr const char* kYellow = "\x1b[33m";
constexpr const char* kCyan = "\x1b[36m";
constexpr const char* kDim = "\x1b[2m";
constexpr const char* kBold = "\x1b[1m";
constexpr const char* kReset = "\x1b[0m";

constexpr const char* kSpinUnicode[] = {"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"};
constexpr const char* kSpinAscii[] = {"-", "\\", "|", "/"};

bool EnvSaysUnicode() {
  for (const char* name : {"LC_ALL", "LC_CTYPE", "LANG"}) {
    const char* value = std::getenv(name);
    if (value == nullptr || *value == '\0') continue;
    std::string v(value);
    std::transform(v.begin(), v.end(), v.begin(), ::tolower);
    return v.find("utf-8") != std::string::npos || v.find("utf8") != std::string::npos;
  }
  return false;
}

// The size of the terminal `out` writes to; 80x24 when it cannot be read.
void TerminalSize(std::FILE* out, int* width, int* height) {
  winsize ws{};
  if (ioctl(fileno(out), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 && ws.ws_row > 0) {
    *width = ws.ws_col;
    *height = ws.ws_row;
  } else {
    *width = 80;
    *height = 24;
  }
}

// A running clock: tenths of a second, so the digits do not flicker.
std::string Elapsed(double seconds) {
  return seconds < 60 ? fmt::format("{:.1f}s", seconds) : FormatDuration(seconds);
}

// Lower sorts first when not every node fits on screen.
int Priority(NodeStatus status) {
  switch (status) {
    case NodeStatus::kRunning:
      return 0;
    case NodeStatus::kFailed:
      return 1;
    case NodeStatus::kCancelled:
      return 2;
    case NodeStatus::kPending:
      return 3;
    default:
      return 4;
  }
}

}  // namespace

LiveProgress::LiveProgress(const WorkflowSpec& workflow, ProgressOptions options)
    : workflow_(workflow),
      options_(std::move(options)),
      color_(std::getenv("NO_COLOR") == nullptr),
      unicode_(EnvSaysUnicode()),
      nodes_(workflow.nodes.size()) {
  for (size_t i = 0; i < workflow_.nodes.size(); ++i) {
    index_.emplace(workflow_.nodes[i].name, i);
    auto kept = options_.kept.find(workflow_.nodes[i].name);
    if (kept != options_.kept.end()) {
      nodes_[i].kept = true;
      nodes_[i].status = kept->second;
    }
  }
}

LiveProgress::~LiveProgress() { Close(); }

void LiveProgress::OnRunStarted(const RunInfo& info) {
  MutexLock lock(&mu_);
  if (closed_ || running_) return;
  std::fprintf(stderr, "%s\n", RunBanner(info, options_).c_str());
  std::fflush(stderr);
  running_ = true;
  dirty_ = true;
  run_started_ = SystemClock()->Now();
  capture_ = std::make_unique<StderrCapture>([this](std::string line) {
    MutexLock line_lock(&mu_);
    logs_.push_back(std::move(line));
    dirty_ = true;
  });
  ArmInterruptNotice(info.run_id, fileno(capture_->terminal()),
                     options_.clock != nullptr ? options_.clock : SystemClock(),
                     RecordInterrupt(info, options_));
  ticker_ = std::thread([this] { Tick(); });
}

void LiveProgress::OnNodeStarted(std::string_view node, int attempt) {
  auto it = index_.find(std::string(node));
  if (it == index_.end()) return;
  MutexLock lock(&mu_);
  NodeView& view = nodes_[it->second];
  view.status = NodeStatus::kRunning;
  view.kept = false;
  view.attempt = attempt;
  view.started = SystemClock()->Now();
  dirty_ = true;
}

void LiveProgress::OnMapItems(std::string_view map, const std::string& counts, bool) {
  auto it = index_.find(std::string(map));
  if (it == index_.end()) return;
  MutexLock lock(&mu_);
  nodes_[it->second].items = counts;
  dirty_ = true;
}

void LiveProgress::OnNodeFinished(std::string_view node, const NodeResult& result, double seconds) {
  auto it = index_.find(std::string(node));
  if (it == index_.end()) return;
  MutexLock lock(&mu_);
  NodeView& view = nodes_[it->second];
  view.status = result.status;
  view.seconds = seconds;
  // One line: a Lua traceback would not fit; `keel show` has it whole.
  std::string detail = result.status == NodeStatus::kCancelled ? result.error.message()
                       : result.status == NodeStatus::kWaiting && result.output
                           ? DescribeWait(*result.output, SystemClock()->WallNow())
                       : result.error.ok() ? ""
                                           : result.error.ToString();
  view.detail = FirstLine(detail);
  dirty_ = true;
}

void LiveProgress::OnEvent(std::string_view node, std::string_view kind, std::string_view data_json,
                           double) {
  if (!IsBreakerTransition(kind)) return;
  std::string line = DescribeEvent(node, kind, data_json);
  MutexLock lock(&mu_);
  logs_.push_back(std::move(line));
  dirty_ = true;
}

void LiveProgress::OnRunFinished(RunStatus status) {
  // The run's final status is queued next: a signal from now on must not
  // record it interrupted. Not under mu_: it may end the process.
  SealRunEnd();
  MutexLock lock(&mu_);
  finished_ = true;
  final_status_ = status;
  dirty_ = true;
}

void LiveProgress::Close() {
  {
    MutexLock lock(&mu_);
    if (closed_) return;
    closed_ = true;
  }
  wake_.SignalAll();
  if (ticker_.joinable()) ticker_.join();
  DisarmInterruptNotice();
  // No lock here: the capture's reader takes mu_ to hand over its last lines.
  if (capture_) capture_->Stop();
  MutexLock lock(&mu_);
  if (running_) Draw();
}

void LiveProgress::Tick() {
  MutexLock lock(&mu_);
  while (!closed_) {
    bool any_running = std::any_of(nodes_.begin(), nodes_.end(), [](const NodeView& v) {
      return v.status == NodeStatus::kRunning;
    });
    // Elapsed times and spinners move while anything runs; otherwise redraw
    // only on change.
    if (dirty_ || any_running || drawn_lines_ == 0) Draw();
    wake_.WaitFor(&mu_, kFrameInterval);
  }
}

void LiveProgress::Draw() {
  std::FILE* out = capture_ ? capture_->terminal() : stderr;
  int width = 0;
  int height = 0;
  TerminalSize(out, &width, &height);
  std::vector<std::string> lines = Render(width, height, SystemClock()->Now());
  std::string frame;
  if (drawn_lines_ > 0) frame += fmt::format("\r\x1b[{}A", drawn_lines_);
  if (!logs_.empty()) {
    // Captured output goes above the frame and scrolls away with the terminal.
    frame += "\x1b[J";
    for (const std::string& log : logs_) frame += log + "\n";
    logs_.clear();
  }
  for (const std::string& line : lines) {
    frame += "\x1b[2K";
    frame += line;
    frame += '\n';
  }
  frame += "\x1b[J";
  std::fwrite(frame.data(), 1, frame.size(), out);
  std::fflush(out);
  drawn_lines_ = static_cast<int>(lines.size());
  dirty_ = false;
  ++frame_;
}

std::vector<std::string> LiveProgress::Render(int width, int height, double now) const {
  size_t name_width = 4;
  for (const auto& node : workflow_.nodes) {
    name_width = std::max(name_width, DisplayWidth(node.name));
  }
  name_width = std::min(name_width, kMaxNameWidth);

  // Every node when they fit; otherwise the ones that need attention first,
  // still shown in workflow order, and a line saying how many are hidden.
  size_t room = static_cast<size_t>(std::max(height - 2, 3)) - 1;
  std::vector<size_t> shown(nodes_.size());
  for (size_t i = 0; i < shown.size(); ++i) shown[i] = i;
  std::vector<size_t> hidden;
  if (shown.size() > room) {
    std::stable_sort(shown.begin(), shown.end(),
                     [this](size_t a, size_t b) EXCLUSIVE_LOCKS_REQUIRED(mu_) {
                       return Priority(nodes_[a].status) < Priority(nodes_[b].status);
                     });
    hidden.assign(shown.begin() + static_cast<std::ptrdiff_t>(room - 1), shown.end());
    shown.resize(room - 1);
    std::sort(shown.begin(), shown.end());
  }

  std::vector<std::string> lines;
  for (size_t i : shown) lines.push_back(RenderNode(i, width, name_width, now));
  if (!hidden.empty()) {
    size_t pending = 0;
    for (size_t i : hidden) pending += nodes_[i].status == NodeStatus::kPending ? 1 : 0;
    std::string more =
        fmt::format("    {} {} more nodes: {} finished, {} pending", unicode_ ? "…" : "...",
                    hidden.size(), hidden.size() - pending, pending);
    more = Truncate(more, static_cast<size_t>(std::max(width - 1, 8)));
    lines.push_back(color_ ? kDim + more + kReset : more);
  }
  lines.push_back(Summary(width, now));
  return lines;
}

std::string LiveProgress::RenderNode(size_t i, int width, size_t name_width, double now) const {
  const NodeView& view = nodes_[i];
  const NodeSpec& spec = workflow_.nodes[i];
  const char* symbol = unicode_ ? "·" : ".";
  const char* tone = kDim;
  std::string text;
  if (view.kept) {
    bool skipped = view.status == NodeStatus::kSkipped;
    symbol = skipped ? (unicode_ ? "–" : "-") : (unicode_ ? "✓" : "+");
    text = fmt::format("kept: {} before", NodeStatusName(view.status));
  } else {
    switch (view.status) {
      case NodeStatus::kPending: {
        std::vector<std::string> waiting;
        for (const std::string& dep : spec.after) {
          auto it = index_.find(dep);
          if (it != index_.end() && !IsFinished(nodes_[it->second].status) &&
              !nodes_[it->second].kept) {
            waiting.push_back(dep);
          }
        }
        text = waiting.empty() ? "ready"
                               : "waiting for " + fmt::format("{}", fmt::join(waiting, ", "));
        break;
      }
      case NodeStatus::kRunning:
        symbol = unicode_ ? kSpinUnicode[frame_ % 10] : kSpinAscii[frame_ % 4];
        tone = kCyan;
        text = "running " + Elapsed(now - view.started);
        if (view.attempt > 1) text += fmt::format(" (attempt {})", view.attempt);
        break;
      case NodeStatus::kSucceeded:
        symbol = unicode_ ? "✓" : "+";
        tone = kGreen;
        text = FormatSeconds(view.seconds);
        break;
      case NodeStatus::kFallback:
        symbol = unicode_ ? "✓" : "+";
        tone = kYellow;
        text = FormatSeconds(view.seconds) + " by fallback";
        break;
      case NodeStatus::kFailed:
        symbol = unicode_ ? "✗" : "x";
        tone = kRed;
        text = fmt::format("{}failed in {}: {}", spec.optional ? "(optional) " : "",
                           FormatSeconds(view.seconds), view.detail);
        break;
      case NodeStatus::kSkipped:
        symbol = unicode_ ? "–" : "-";
        text = "skipped";
        break;
      case NodeStatus::kCancelled:
        symbol = unicode_ ? "⊘" : "/";
        tone = kYellow;
        text = "cancelled: " + view.detail;
        break;
      case NodeStatus::kWaiting:
        symbol = unicode_ ? "⏸" : "=";
        tone = kYellow;
        text = "waiting for " + view.detail;
        break;
    }
  }

  if (!view.items.empty()) text = view.items + "  " + text;
  // "  S name  text", cut to the terminal width so that no line wraps.
  size_t avail = static_cast<size_t>(std::max(width - 1, 8)) - 4;
  std::string name = Truncate(spec.name, std::min(name_width, avail));
  name.append(name_width - std::min(name_width, DisplayWidth(name)), ' ');
  size_t rest = avail > DisplayWidth(name) + 2 ? avail - DisplayWidth(name) - 2 : 0;
  text = Truncate(text, rest);
  if (!color_) return fmt::format("  {} {}  {}", symbol, name, text);
  bool quiet =
      tone == kDim || view.status == NodeStatus::kSkipped || view.status == NodeStatus::kCancelled;
  if (quiet) return fmt::format("  {}{} {}  {}{}", kDim, symbol, name, text, kReset);
  const char* text_tone = view.status == NodeStatus::kFailed ? kRed : "";
  return fmt::format("  {}{}{} {}  {}{}{}", tone, symbol, kReset, name, text_tone, text, kReset);
}

std::string LiveProgress::Summary(int width, double now) const {
  int done = 0;
  int running = 0;
  int failed = 0;
  for (const NodeView& v : nodes_) {
    if (v.kept || IsKeptOnResume(v.status)) ++done;
    if (v.status == NodeStatus::kRunning) ++running;
    if (v.status == NodeStatus::kFailed) ++failed;
  }
  const char* sep = unicode_ ? " · " : ", ";
  std::string head = workflow_.name;
  if (finished_) head += fmt::format(" {}", RunStatusName(final_status_));
  std::string text = fmt::format("{}/{} done", done, nodes_.size());
  if (running > 0) text += fmt::format("{}{} running", sep, running);
  if (failed > 0) text += fmt::format("{}{} failed", sep, failed);
  text += sep +
          (finished_ || closed_ ? FormatSeconds(now - run_started_) : Elapsed(now - run_started_));
  std::string plain = fmt::format("  {}: {}", head, text);
  if (!color_ || DisplayWidth(plain) > static_cast<size_t>(std::max(width - 1, 8))) {
    return Truncate(plain, static_cast<size_t>(std::max(width - 1, 8)));
  }
  return fmt::format("  {}{}{}: {}", kBold, head, kReset, text);
}

}  // namespace keel::cli
