// `keel fork RUN [--from NODE] [-p k=v]...`: a new run of a recorded run's
// workflow, with the script as it is now and the run's recorded params and
// configuration (the command line's -p, --provider and limits over them),
// that reuses the recorded outputs of every node not downstream of NODE.

#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <system_error>
#include <thread>

#include "cli/commands.h"
#include "cli/db.h"
#include "cli/exit_codes.h"
#include "cli/interrupt_notice.h"
#include "cli/load_script.h"
#include "cli/params.h"
#include "cli/queued_output.h"
#include "cli/run_setup.h"
#include "engine/clock.h"
#include "engine/dynamic_node.h"
#include "engine/executor.h"
#include "engine/rerun.h"
#include "engine/store_quota_source.h"

namespace keel::cli {

int ForkCommand(const ForkArgs& args) {
  std::jthread warm_up(&Executor::WarmUp);
  // Check the -p syntax before running any script code.
  auto syntax = ApplyParamOverrides(nullptr, args.params);
  if (!syntax.ok()) return UsageError(syntax.status().message());
  std::string db_path = ResolveDbPath(args.db);
  SetInterruptNoticeDb(args.db);
  auto store = OpenDb(
      db_path,
      {.create = false, .durability = args.durability, .storage_timeout = args.storage_timeout});
  if (!store.ok()) return UsageError(store.status().message());
  auto source = (*store)->GetRun(args.run_id);
  if (!source.ok()) return UsageError(source.status().message());

  std::error_code ec;
  if (!std::filesystem::exists(source->script_path, ec)) {
    return UsageError(fmt::format("cannot fork run {}: its script {} no longer exists", source->id,
                                  source->script_path));
  }
  auto config = RecordedConfig(*source, args.llm, args.max_inflight);
  if (!config.ok()) return UsageError(config.status().message());
  auto quotas = std::make_shared<StoreQuotaSource>(SystemClock());
  ScopedQuotaStore shared_limits(quotas.get(), store->get());
  std::shared_ptr<LoadedScript> script =
      LoadScript(source->script_path, ProviderUrls(config->llm.providers), quotas);
  if (!script) return kExitUsage;
  const WorkflowSpec* workflow = script->Find(source->workflow);
  if (workflow == nullptr) {
    return UsageError(fmt::format("cannot fork run {}: {} no longer declares workflow '{}'",
                                  source->id, source->script_path, source->workflow));
  }
  auto rerun = RerunSet(*workflow, args.from, source->id);
  if (!rerun.ok()) return UsageError(rerun.status().message());
  // The recorded params, with any the script declares now and the run did not have.
  auto params = ApplyParamOverrides(
      MergeJsonObjects(workflow->params, MakeJson(source->params_json)), args.params);
  if (!params.ok()) return UsageError(params.status().message());

  if (args.queue) {
    Runner runner(script->clock, store->get(), nullptr);
    runner.set_config_json(ConfigJson(*config));
    runner.set_queue_only(true);
    return PrintQueued(runner.Fork(*source, args.from, *workflow, script->info, *params, {}),
                       args.json);
  }
  ProgressOptions progress_options;
  progress_options.clock = script->clock;
  progress_options.json_lines = args.log_format == "json";
  progress_options.forked_from = source->id;
  if (!args.from.empty()) {
    auto nodes = (*store)->GetNodes(source->id);
    if (!nodes.ok()) return UsageError(nodes.status().message());
    for (const NodeRecord& node : *nodes) {
      if (IsKeptOnResume(node.status) && workflow->Find(node.node) >= 0 &&
          !rerun->count(node.node)) {
        progress_options.kept.emplace(node.node, node.status);
      }
    }
  }
  if (!progress_options.json_lines) {  // JSON lines carry every line as an event
    std::fprintf(stderr, "forking run %s%s: %zu of %zu nodes reused\n", source->id.c_str(),
                 args.from.empty() ? "" : (" from " + args.from).c_str(),
                 progress_options.kept.size(), workflow->nodes.size());
  }

  ExecutorOptions options;
  options.workers = args.workers;
  options.max_inflight = config->max_inflight;
  options.library = &script->workflows;
  options.budget = RunBudget(config->llm, workflow->budget);
  auto fork = [&](Progress* progress) {
    Runner runner(script->clock, store->get(), progress);
    runner.set_config_json(ConfigJson(*config));
    return runner.Fork(*source, args.from, *workflow, script->info, *params, options);
  };
  return ExecuteRun(*workflow, store->get(), std::move(progress_options), args.json, args.db, fork);
}

}  // namespace keel::cli
