#include "cli/wait_hint.h"

#include "cli/db_postgres.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>

#include "engine/clock.h"
#include "engine/wait_node.h"
#include "views/format.h"

namespace keel::cli {

std::string ShellQuote(const std::string& text) {
  bool plain = !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return isalnum(static_cast<unsigned char>(c)) ||
           std::string_view("-_./:=@%+,").find(c) != std::string_view::npos;
  });
  if (plain) return text;
  std::string quoted = "'";
  for (char c : text) {
    if (c == '\'') {
      quoted += "'\\''";
    } else {
      quoted += c;
    }
  }
  return quoted + "'";
}

std::string DbArg(const std::string& db_flag) {
  return db_flag.empty() ? "" : " --db " + ShellQuote(DbName(db_flag));
}

std::string DescribeWait(const std::string& info_json, double now) {
  WaitInfo info;
  if (!ParseWaitInfo(info_json, &info)) return "a signal or a timer";
  double d = info.due - now;
  std::string left =
      d <= 0 ? "now" : "in " + (d < 60 ? fmt::format("{:.1f}s", d) : FormatDuration(d));
  if (info.signal.empty()) return "timer due " + FormatLocalTime(info.due) + " (" + left + ")";
  std::string text = "signal '" + info.signal + "'";
  if (info.due > 0) text += " (times out " + FormatLocalTime(info.due) + ", " + left + ")";
  return text;
}

void PrintWaitHint(const RunReport& report, const WorkflowSpec& workflow,
                   const std::string& db_flag, bool distributed) {
  const double now = SystemClock()->WallNow();
  const std::string db = DbArg(db_flag);
  const std::string& id = report.run_id;
  std::vector<std::string> signals;
  double due = 0;
  for (size_t i = 0; i < workflow.nodes.size() && i < report.outcome.results.size(); ++i) {
    const NodeResult& result = report.outcome.results[i];
    if (result.status != NodeStatus::kWaiting || !result.output) continue;
    std::fprintf(stderr, "%s waits for %s\n", workflow.nodes[i].name.c_str(),
                 DescribeWait(*result.output, now).c_str());
    WaitInfo info;
    if (!ParseWaitInfo(*result.output, &info)) continue;
    if (!info.signal.empty()) {
      if (std::find(signals.begin(), signals.end(), info.signal) == signals.end()) {
        signals.push_back(info.signal);
      }
    } else if (due == 0 || info.due < due) {
      due = info.due;
    }
  }
  for (const std::string& signal : signals) {
    std::fprintf(stderr, "send the signal with: keel signal %s %s --data JSON%s\n", id.c_str(),
                 ShellQuote(signal).c_str(), db.c_str());
  }
  if (distributed) {
    std::fprintf(stderr, "workers continue the run when %s; follow it with: keel show %s%s\n",
                 signals.empty() ? "its timer is due" : "the signal comes", id.c_str(),
                 db.c_str());
  } else if (!signals.empty()) {
    std::fprintf(stderr, "then continue the run with: keel resume %s%s\n", id.c_str(), db.c_str());
  } else if (due > 0) {
    std::fprintf(stderr, "continue the run once the timer is due (%s) with: keel resume %s%s\n",
                 FormatLocalTime(due).c_str(), id.c_str(), db.c_str());
  }
  if (!distributed) {
    std::fprintf(stderr, "or let it wait in this process: keel resume %s --wait%s\n", id.c_str(),
                 db.c_str());
  }
  std::fflush(stderr);
}

}  // namespace keel::cli
