// `keel schedules`: every keel.schedule of every workflow file under a
// directory, with its next tick; what `keel serve` runs to discover them.

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <system_error>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/schedule_listing.h"
#include "cli/table.h"
#include "engine/clock.h"
#include "engine/cron_schedule.h"
#include "views/format.h"
#include "views/json_out.h"

namespace keel::cli {
namespace {

namespace fs = std::filesystem;

// The .lua files under `dir` (relative to it, sorted), and the entries that
// cannot be listed (links leading outside `dir`, unreadable directories).
void FindWorkflowFiles(const fs::path& dir, std::vector<std::string>* files,
                       std::vector<ScheduleFileError>* errors) {
  std::error_code ec;
  const fs::path root = fs::canonical(dir, ec);
  if (ec) {
    errors->push_back({dir.string(), "cannot open the directory: " + ec.message()});
    return;
  }
  fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec);
  for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const fs::path& path = it->path();
    if (path.extension() != ".lua") continue;
    const std::string rel = path.lexically_relative(root).string();
    std::error_code link_ec;
    fs::path real = fs::canonical(path, link_ec);
    if (link_ec) continue;  // a dangling link
    auto [end, _] = std::mismatch(root.begin(), root.end(), real.begin(), real.end());
    if (end != root.end()) {
      errors->push_back({rel, "a link leading outside " + dir.string() + "; not listed"});
      continue;
    }
    if (!fs::is_regular_file(real)) continue;
    files->push_back(rel);
  }
  if (ec) errors->push_back({dir.string(), "cannot list the directory: " + ec.message()});
  std::sort(files->begin(), files->end());
}

}  // namespace

std::vector<ScheduleListing> SchedulesOf(const LoadedScript& script, const std::string& file,
                                         int64_t now) {
  std::vector<ScheduleListing> listings;
  const WorkflowSpec& workflow = script.main_workflow();
  for (const ScheduleDeclaration& d : script.schedules) {
    ScheduleListing& s = listings.emplace_back();
    s.key = file + "#" + d.Label();
    s.file = file;
    s.name = d.name;
    s.index = d.index;
    s.cron = d.cron;
    s.every = d.every;
    s.workflow = workflow.name;
    s.params_json = d.effective_params;
    s.script_path = script.info.path;
    s.script_sha256 = script.info.sha256;
    s.script_text = script.info.text;
    s.node_count = static_cast<int>(workflow.nodes.size());
    auto rule = d.cron.empty() ? ScheduleRule::Every(d.every) : ScheduleRule::Cron(d.cron);
    s.next_tick = rule.ok() ? rule->Next(now) : 0;  // checked when it was declared
  }
  return listings;
}

std::string DescribeSchedule(const ScheduleListing& schedule) {
  return schedule.cron.empty() ? "every " + std::to_string(schedule.every) + "s"
                               : "cron " + schedule.cron;
}

int SchedulesCommand(const SchedulesArgs& args) {
  ScheduleListingSet set;
  std::vector<std::string> files;
  const fs::path dir = args.workflows.empty() ? fs::path(".") : fs::path(args.workflows);
  FindWorkflowFiles(dir, &files, &set.errors);
  const int64_t now = static_cast<int64_t>(SystemClock()->WallNow());
  for (const std::string& file : files) {
    const std::string path = dir == fs::path(".") ? file : (dir / file).string();
    auto script = LoadWorkflowFile(path, LoadOptions{});
    if (!script.ok()) {
      set.errors.push_back({file, script.status().message()});
      continue;
    }
    for (ScheduleListing& s : SchedulesOf(**script, file, now)) {
      set.schedules.push_back(std::move(s));
    }
  }
  std::sort(set.errors.begin(), set.errors.end(),
            [](const ScheduleFileError& a, const ScheduleFileError& b) { return a.file < b.file; });
  if (args.json) {
    JsonOut out;
    WriteScheduleListingJson(set, &out);
    out.Print(stdout);
  } else {
    Table table({"KEY", "SCHEDULE", "WORKFLOW", "PARAMS", "NEXT TICK (UTC)"});
    for (const ScheduleListing& s : set.schedules) {
      table.AddRow({s.key, DescribeSchedule(s), s.workflow, s.params_json,
                    FormatIsoUtc(static_cast<double>(s.next_tick))});
    }
    if (set.schedules.empty()) {
      std::printf("no schedules under %s\n", dir.c_str());
    } else {
      table.Print(stdout);
    }
    for (const ScheduleFileError& e : set.errors) {
      std::printf("%s: did not load:\n  %s\n", e.file.c_str(), e.error.c_str());
    }
  }
  return set.errors.empty() ? kExitSucceeded : kExitUsage;
}

}  // namespace keel::cli
