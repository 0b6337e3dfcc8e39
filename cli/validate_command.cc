// `keel validate`: loads a workflow file and reports whether it is sound.

#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/load_script.h"
#include "cli/schedule_listing.h"
#include "engine/clock.h"
#include "views/format.h"
#include "views/json_out.h"
#include "views/workflow_summary.h"

namespace keel::cli {

int ValidateCommand(const ValidateArgs& args) {
  std::shared_ptr<LoadedScript> script = LoadScript(args.file);
  if (!script) return kExitUsage;
  const WorkflowSpec& workflow = script->main_workflow();
  if (args.json) {
    JsonOut out;
    WriteWorkflowSummaryJson(&out, args.file, workflow);
    out.Print(stdout);
    return kExitSucceeded;
  }
  std::printf("%s: ok: workflow '%s' (%zu nodes)\n", args.file.c_str(), workflow.name.c_str(),
              workflow.nodes.size());
  const int64_t now = static_cast<int64_t>(SystemClock()->WallNow());
  for (const ScheduleListing& s : SchedulesOf(*script, args.file, now)) {
    const std::string label = s.name.empty() ? std::to_string(s.index) : "'" + s.name + "'";
    std::printf("  schedule %s: %s, params %s, next tick %s\n", label.c_str(),
                DescribeSchedule(s).c_str(), s.params_json.c_str(),
                FormatIsoUtc(static_cast<double>(s.next_tick)).c_str());
  }
  return kExitSucceeded;
}

}  // namespace keel::cli
