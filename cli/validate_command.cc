// `keel validate`: loads a workflow file and reports whether it is sound.

#include <cstdio>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "engine/clock.h"
#include "scripts/workflow_loader.h"

namespace keel::cli {

int ValidateCommand(const ValidateArgs& args) {
  LoadOptions options;
  options.clock = SystemClock();
  auto script = LoadWorkflowFile(args.file, options);
  if (!script.ok()) {
    std::fprintf(stderr, "%s\n", script.status().message().c_str());
    return kExitUsage;
  }
  const WorkflowSpec& workflow = (*script)->main_workflow();
  std::printf("%s: ok: workflow '%s' (%zu nodes)\n", args.file.c_str(), workflow.name.c_str(),
              workflow.nodes.size());
  return kExitSucceeded;
}

}  // namespace keel::cli
