// `keel validate`: loads a workflow file and reports whether it is sound.

#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/load_script.h"

namespace keel::cli {

int ValidateCommand(const ValidateArgs& args) {
  std::shared_ptr<LoadedScript> script = LoadScript(args.file);
  if (!script) return kExitUsage;
  const WorkflowSpec& workflow = script->main_workflow();
  std::printf("%s: ok: workflow '%s' (%zu nodes)\n", args.file.c_str(), workflow.name.c_str(),
              workflow.nodes.size());
  return kExitSucceeded;
}

}  // namespace keel::cli
