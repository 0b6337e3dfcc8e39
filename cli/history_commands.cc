// `keel runs` and `keel gc`: list and prune the run history.

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "cli/commands.h"
#include "cli/db.h"
#include "cli/db_postgres.h"
#include "cli/exit_codes.h"
#include "views/llm_usage.h"
#include "cli/table.h"
#include "engine/clock.h"
#include "views/format.h"
#include "views/json_out.h"
#include "views/run_list.h"

namespace keel::cli {

int RunsCommand(const RunsArgs& args) {
  std::string wanted = args.status;
  RunListQuery query{.status = wanted,
                     .workflow = args.workflow,
                     .limit = args.limit,
                     .before = "",
                     .state = args.state};
  if (!wanted.empty()) {
    RunStatus status;
    if (!ParseRunStatus(wanted, &status)) {
      return UsageError(fmt::format("--status '{}': expected {}", wanted, kRunStatusNames));
    }
  }

  std::string db_path = ResolveDbPath(args.db);
  auto store = OpenDbIfExists(db_path);
  if (!store.ok()) return UsageError(store.status().message());
  if (*store == nullptr) {
    std::fprintf(stderr, "no runs (no database at %s)\n", DbName(db_path).c_str());
    if (args.json) std::printf("[]\n");
    return kExitSucceeded;
  }
  double now = SystemClock()->WallNow();
  auto listed = ListLabelledRuns(**store, query, now);
  if (!listed.ok()) {
    if (!args.state.empty() && listed.status().message().starts_with("'" + args.state + "'")) {
      return UsageError("--state " + listed.status().message());
    }
    return UsageError(listed.status().message());
  }
  std::vector<std::pair<const RunListing*, std::string>> rows;
  std::vector<std::string> shown;  // the status, and the live state when it says more
  for (const LabelledRun& row : *listed) {
    rows.emplace_back(&row.listing, row.label);
    std::string text = row.label;
    if (!row.live.state.empty() && row.live.state != row.label) {
      text += ", " + row.live.state;
      if (!row.live.waiting_for.empty()) text += " " + row.live.waiting_for;
    }
    shown.push_back(std::move(text));
  }

  if (args.json) {
    JsonOut out;
    WriteRunListJson(&out, *listed, now);
    out.Print(stdout);
    return kExitSucceeded;
  }

  if (rows.empty()) {
    std::string what = wanted.empty() ? "runs" : wanted + " runs";
    std::fprintf(stderr, "no %s in %s\n", what.c_str(), DbName(db_path).c_str());
    return kExitSucceeded;
  }
  // TOKENS only when a listed run made LLM calls, COST only when one was priced.
  bool spent = false;
  bool priced = false;
  for (const auto& [listing, label] : rows) {
    spent = spent || listing->usage.tokens() > 0 || listing->usage.cost > 0;
    priced = priced || listing->usage.cost > 0;
  }
  std::vector<std::string> header = {"RUN",    "WORKFLOW", "STATUS", "STARTED",
                                     "ACTIVE", "ELAPSED",  "NODES"};
  if (spent) header.push_back("TOKENS");
  if (priced) header.push_back("COST");
  Table table(std::move(header));
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& [listing, label] = rows[i];
    const RunRecord& run = listing->run;
    const Usage& usage = listing->usage;
    std::vector<std::string> row = {run.id,
                                    run.workflow,
                                    shown[i],
                                    FormatLocalTime(run.created_at),
                                    FormatDurationOrDash(ActiveSeconds(run, label, now)),
                                    FormatDurationOrDash(RunSeconds(run, label, now)),
                                    fmt::format("{}/{}", listing->nodes_done, run.node_count)};
    if (spent) row.push_back(usage.tokens() > 0 ? FormatCount(usage.tokens()) : "-");
    if (priced) row.push_back(usage.cost > 0 ? FormatCost(usage.cost) : "-");
    table.AddRow(std::move(row));
  }
  table.Print(stdout);
  return kExitSucceeded;
}

int GcCommand(const GcArgs& args) {
  double seconds = 0;
  if (!ParseDuration(args.older_than, &seconds)) {
    return UsageError(fmt::format(
        "--older-than '{}': expected a number and a unit: s, m, h, d or w (for example 7d)",
        args.older_than));
  }
  std::string db_path = ResolveDbPath(args.db);
  auto store = OpenDbIfExists(db_path, DbAccess::kWrite);
  if (!store.ok()) return UsageError(store.status().message());
  if (*store == nullptr) {
    std::printf("deleted 0 runs\n");
    std::fprintf(stderr, "note: no database at %s\n", DbName(db_path).c_str());
    return kExitSucceeded;
  }
  std::error_code before_error, after_error;
  auto size_before = std::filesystem::file_size(db_path, before_error);
  auto deleted = (*store)->DeleteFinishedBefore(SystemClock()->WallNow() - seconds);
  if (!deleted.ok()) return UsageError(deleted.status().message());
  std::printf("deleted %lld runs\n", static_cast<long long>(*deleted));
  auto size_after = std::filesystem::file_size(db_path, after_error);
  if (*deleted > 0 && !before_error && !after_error) {
    std::fprintf(stderr, "database file %s: %s before, %s now\n", db_path.c_str(),
                 FormatBytes(size_before).c_str(), FormatBytes(size_after).c_str());
  }
  return kExitSucceeded;
}

}  // namespace keel::cli
