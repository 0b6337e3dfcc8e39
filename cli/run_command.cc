// `keel run` and `keel resume`: load the script, open the store, hand both to
// the Runner with a progress display, print the report.

#include <fmt/format.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <system_error>
#include <thread>

#include "cli/commands.h"
#include "cli/db.h"
#include "cli/exit_codes.h"
#include "cli/interrupt_notice.h"
#include "cli/llm_options.h"
#include "views/llm_usage.h"
#include "cli/load_script.h"
#include "cli/params.h"
#include "cli/progress.h"
#include "cli/recorded_report.h"
#include "cli/recorded_script.h"
#include "cli/run_config.h"
#include "cli/run_output.h"
#include "cli/run_setup.h"
#include "cli/run_tracing.h"
#include "cli/wait_hint.h"
#include "engine/clock.h"
#include "engine/event_data.h"
#include "engine/executor.h"
#include "engine/process_owner.h"
#include "engine/rerun.h"
#include "engine/runner.h"
#include "engine/store_quota_source.h"
#include "scripts/workflow_loader.h"
#include "store/postgres/pg_connection.h"

namespace keel::cli {
namespace {

// What the run's LLM calls spent, earlier attempts included; nothing when
// its events cannot be read.
LlmTotals RunUsage(Store* store, const std::string& run_id) {
  auto events = store->GetEvents(run_id);
  return events.ok() ? SumLlmUsage(*events).total : LlmTotals{};
}

// Records in `store` that SIGINT or SIGTERM stopped run `run_id`: a
// run_interrupted event and the status interrupted, committed before the
// process dies of the signal.
void RecordInterrupted(Store* store, const std::string& run_id, int signal_number) {
  const char* name = signal_number == SIGINT    ? "SIGINT"
                     : signal_number == SIGTERM ? "SIGTERM"
                                                : "signal";
  double now = SystemClock()->WallNow();
  store->AppendEvent({run_id, 0, now, "", "run_interrupted",
                      EventData().Add("signal", name).Add("number", signal_number).Done()});
  store->FinishRun(run_id, RunStatus::kInterrupted, fmt::format("interrupted by {}", name), now);
  (void)store->Flush();  // nothing to do about a failure: the process is ending
}

// Runs the workflow through `start` with a progress display and prints the
// report. Returns the exit code.
template <typename StartFn>
int Execute(const WorkflowSpec& workflow, Store* store, ProgressOptions progress_options, bool json,
            const std::string& db_flag, StartFn start) {
  progress_options.on_interrupt = [store](const std::string& run_id, int signal_number) {
    RecordInterrupted(store, run_id, signal_number);
  };
  RunTracing tracing(workflow, progress_options.resuming);
  std::unique_ptr<Progress> progress =
      tracing.Wrap(MakeProgress(workflow, std::move(progress_options)));
  double began = SystemClock()->Now();
  // From the run's creation (or claim) on, a signal records it interrupted;
  // the progress arms that once the run has started.
  HoldInterrupts();
  Result<RunReport> report = start(progress.get());
  double seconds = SystemClock()->Now() - began;
  progress->Close();
  ReleaseInterrupts();
  if (!report.ok()) {
    // Checkpoints that could not be saved stop a run that can be resumed:
    // it failed, for now. Anything else (the run taken over by another
    // process, a claim refused) is an error of the command.
    if (report.status().kind() != ErrorKind::kTransient) {
      return UsageError(report.status().message());
    }
    // The runner's message starts "run RUN_ID stopped".
    const std::string& message = report.status().message();
    std::string run_id = message.substr(4, message.find(' ', 4) - 4);
    PrintError(message + "; `" + ResumeCommandFor(run_id) + "` continues it once that is fixed");
    return kExitFailed;
  }
  PrintRunReport(*report, workflow, seconds, RunUsage(store, report->run_id), json);
  if (report->status == RunStatus::kWaiting) PrintWaitHint(*report, workflow, db_flag);
  return ExitCodeFor(report->status);
}

// The executor options for `workflow` of `script`: the command's
// --workers, --max-inflight and budget flags, and the script's workflows as
// fallbacks.
ExecutorOptions MakeOptions(int workers, int max_inflight, const LlmArgs& llm,
                            const LoadedScript& script, const WorkflowSpec& workflow, bool wait) {
  ExecutorOptions options;
  options.workers = workers;
  options.max_inflight = max_inflight;
  options.library = &script.workflows;
  options.budget = RunBudget(llm, workflow.budget);
  options.hold_waits = wait;
  return options;
}

}  // namespace

int RunCommand(const RunArgs& args) {
  std::jthread warm_up(&Executor::WarmUp);
  // Check the -p syntax before running any script code.
  auto syntax = ApplyParamOverrides(nullptr, args.params);
  if (!syntax.ok()) return UsageError(syntax.status().message());
  // Providers' rpm and tpm are shared through the database, once it is open.
  auto quotas = std::make_shared<StoreQuotaSource>(SystemClock());
  std::shared_ptr<LoadedScript> script =
      LoadScript(args.file, ProviderUrls(args.llm.providers), quotas);
  if (!script) return kExitUsage;
  if (std::string url = ResolveDbPath(args.db); pg::IsPostgresUrl(url)) {
    return DistributedRun(args, url, std::move(script));
  }
  const WorkflowSpec& workflow = script->main_workflow();
  auto params = ApplyParamOverrides(workflow.params, args.params);
  if (!params.ok()) return UsageError(params.status().message());

  std::string db_path = ResolveDbPath(args.db);
  SetInterruptNoticeDb(args.db);
  auto store = OpenDb(db_path, {.create = true,
                                .durability = args.durability,
                                .storage_timeout = args.storage_timeout});
  if (!store.ok()) return UsageError(store.status().message());
  ScopedQuotaStore shared_limits(quotas.get(), store->get());

  ExecutorOptions options =
      MakeOptions(args.workers, args.max_inflight, args.llm, *script, workflow, args.wait);
  ProgressOptions progress_options;
  progress_options.clock = script->clock;
  progress_options.json_lines = args.log_format == "json";
  return Execute(workflow, store->get(), std::move(progress_options), args.json, args.db,
                 [&](Progress* progress) {
                   Runner runner(script->clock, store->get(), progress);
                   runner.set_config_json(ConfigJson(ConfigFromArgs(args.llm, args.max_inflight)));
                   return runner.Start(workflow, script->info, *params, options);
                 });
}

int ResumeCommand(const ResumeArgs& args) {
  if (!args.params.empty()) return UsageError(ResumeKeepsParams(args.run_id));
  std::jthread warm_up(&Executor::WarmUp);
  std::string db_path = ResolveDbPath(args.db);
  SetInterruptNoticeDb(args.db);
  auto store = OpenDb(db_path, {.create = false,
                                .durability = args.durability,
                                .storage_timeout = args.storage_timeout});
  if (!store.ok()) return UsageError(store.status().message());
  auto run = (*store)->GetRun(args.run_id);
  if (!run.ok()) return UsageError(run.status().message());
  if (run->status == RunStatus::kSucceeded && args.from.empty()) {
    std::fprintf(stderr, "run %s already succeeded; nothing to resume\n", run->id.c_str());
    if (!args.json) return kExitSucceeded;
    auto recorded = ReadRecordedReport(store->get(), *run);
    if (!recorded.ok()) return UsageError(recorded.status().message());
    PrintRunReport((*recorded)->report, *(*recorded)->workflow, (*recorded)->seconds,
                   RunUsage(store->get(), run->id), /*json=*/true);
    return kExitSucceeded;
  }
  if (run->status == RunStatus::kCancelled) {
    return UsageError(
        fmt::format("run {} was cancelled; a cancelled run cannot be resumed", run->id));
  }
  if (pg::IsPostgresUrl(db_path)) {
    auto distributed = IsDistributedRun(db_path, run->id);
    if (!distributed.ok()) return UsageError(distributed.status().message());
    if (*distributed) return DistributedResume(args, db_path, *run);
  }
  if (args.handoff_epoch != 0 && run->epoch != args.handoff_epoch) {
    return UsageError(fmt::format("run {} was handed over at epoch {} but is at epoch {} now",
                                  run->id, args.handoff_epoch, run->epoch));
  }
  if (args.handoff_epoch == 0 && run->status == RunStatus::kRunning &&
      OwnerAlive(run->owner, SystemClock()->WallNow() - run->heartbeat)) {
    return UsageError(fmt::format(
        "run {} is still running in process {} on {}; it can be resumed once that process exits",
        run->id, run->owner.pid, run->owner.host));
  }

  std::error_code ec;
  if (!std::filesystem::exists(run->script_path, ec)) {
    return UsageError(fmt::format("cannot resume run {}: its script {} no longer exists", run->id,
                                  run->script_path));
  }
  // The recorded configuration, with what this command line gives instead.
  auto config = RecordedConfig(*run, args.llm, args.max_inflight);
  if (!config.ok()) return UsageError(config.status().message());
  auto quotas = std::make_shared<StoreQuotaSource>(SystemClock());
  ScopedQuotaStore shared_limits(quotas.get(), store->get());
  std::shared_ptr<LoadedScript> script =
      LoadScript(run->script_path, ProviderUrls(config->llm.providers), quotas);
  if (!script) return kExitUsage;
  const WorkflowSpec* workflow = script->Find(run->workflow);
  if (workflow == nullptr) {
    return UsageError(fmt::format("cannot resume run {}: {} no longer declares workflow '{}'",
                                  run->id, run->script_path, run->workflow));
  }
  auto rerun = RerunSet(*workflow, args.from, run->id);
  if (!rerun.ok()) return UsageError(rerun.status().message());
  NoteScriptChanges(store->get(), *run, script->info);

  auto nodes = (*store)->GetNodes(run->id);
  if (!nodes.ok()) return UsageError(nodes.status().message());
  // A queued run starts from the beginning, as `keel run` shows it.
  const bool queued = run->status == RunStatus::kQueued;
  ProgressOptions progress_options;
  progress_options.resuming = !queued;
  progress_options.clock = script->clock;
  progress_options.json_lines = args.log_format == "json";
  for (const NodeRecord& node : *nodes) {
    if (IsKeptOnResume(node.status) && !RecordOfAny(node.node, *rerun)) {
      progress_options.kept.emplace(node.node, node.status);
    }
  }

  ExecutorOptions options =
      MakeOptions(args.workers, config->max_inflight, config->llm, *script, *workflow, args.wait);
  auto resume = [&](Progress* progress) {
    Runner runner(script->clock, store->get(), progress);
    runner.set_config_json(ConfigJson(*config));
    runner.set_handoff(args.handoff_epoch != 0);
    return runner.Resume(*run, *workflow, script->info, options, args.from);
  };
  int code =
      Execute(*workflow, store->get(), std::move(progress_options), args.json, args.db, resume);
  if (!queued) PrintRunTimes(store->get(), run->id);
  return code;
}

int ExecuteRun(const WorkflowSpec& workflow, Store* store, ProgressOptions progress_options,
               bool json, const std::string& db_flag,
               const std::function<Result<RunReport>(Progress*)>& start) {
  return Execute(workflow, store, std::move(progress_options), json, db_flag, start);
}

}  // namespace keel::cli
