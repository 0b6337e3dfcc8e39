// `keel submit FILE.lua [-p k=v]...`: records a run queued (RunStatus::kQueued)
// without running it, after the checks `keel run` makes; `keel resume` or
// `keel serve` starts it later. Also prints what `keel fork --queue` queued.

#include <fmt/format.h>

#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "cli/db.h"
#include "cli/exit_codes.h"
#include "cli/llm_options.h"
#include "cli/load_script.h"
#include "cli/params.h"
#include "cli/queued_output.h"
#include "cli/run_config.h"
#include "engine/runner.h"
#include "scripts/workflow_loader.h"
#include "store/postgres/pg_connection.h"
#include "views/json_out.h"

namespace keel::cli {

int PrintQueued(const Result<RunReport>& report, bool json) {
  if (!report.ok()) return UsageError(report.status().message());
  if (json) {
    JsonOut out;
    out.BeginObject();
    out.Key("run_id").String(report->run_id);
    out.Key("status").String("queued");
    out.EndObject();
    std::printf("%s\n", out.Text().c_str());
  } else {
    std::printf("%s\n", report->run_id.c_str());
  }
  return kExitSucceeded;
}

int SubmitCommand(const RunArgs& args) {
  if (std::string url = ResolveDbPath(args.db); pg::IsPostgresUrl(url)) {
    return DistributedSubmit(args, url);
  }
  // The checks of `keel run`, in its order: -p syntax, the script, -p against
  // the params it declares.
  auto syntax = ApplyParamOverrides(nullptr, args.params);
  if (!syntax.ok()) return UsageError(syntax.status().message());
  std::shared_ptr<LoadedScript> script = LoadScript(args.file, ProviderUrls(args.llm.providers));
  if (!script) return kExitUsage;
  const WorkflowSpec& workflow = script->main_workflow();
  auto params = ApplyParamOverrides(workflow.params, args.params);
  if (!params.ok()) return UsageError(params.status().message());

  auto store = OpenDb(ResolveDbPath(args.db), {.create = true,
                                               .durability = args.durability,
                                               .storage_timeout = args.storage_timeout});
  if (!store.ok()) return UsageError(store.status().message());
  Runner runner(script->clock, store->get(), nullptr);
  runner.set_config_json(ConfigJson(ConfigFromArgs(args.llm, args.max_inflight)));
  runner.set_queue_only(true);
  auto report = runner.Start(workflow, script->info, *params, ExecutorOptions{});
  return PrintQueued(report, args.json);
}

}  // namespace keel::cli
