// keel: runs DAG workflows written in Lua, checkpointing every node so that a
// failed or crashed run can be resumed. This file only wires the subcommands;
// each lives in its own *_command.cc.

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstring>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/doctor_command.h"
#include "cli/exit_codes.h"
#include "cli/parent_death.h"
#include "cli/standard_streams.h"

namespace keel::cli {
namespace {

constexpr const char* kFooter =
    "Database: --db PATH, else $KEEL_DB, else ./keel.db.\n"
    "Exit codes: 0 succeeded, 1 failed, 2 usage, script or database error,\n"
    "3 degraded (optional nodes failed), 4 waiting (parked on a signal or a timer),\n"
    "5 stdout could not be written.";

std::string CheckWorkers(const std::string& text) {
  char* end = nullptr;
  long value = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || value < 1 || value > 4096) {
    return "expected a whole number of worker threads from 1 to 4096, got '" + text + "'";
  }
  return "";
}

std::string CheckLimit(const std::string& text) {
  char* end = nullptr;
  long value = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || value < 0) {
    return "expected a whole number of runs (0 for all), got '" + text + "'";
  }
  return "";
}

std::string CheckMaxInflight(const std::string& text) {
  char* end = nullptr;
  long value = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || value < 1) {
    return "expected a whole number of attempts, 1 or more, got '" + text + "'";
  }
  return "";
}

// --workers and --max-inflight, shared by run and resume.
void AddExecutionOptions(CLI::App* command, int* workers, int* max_inflight) {
  command->add_option("--workers", *workers, "Worker threads (default: all cores)")
      ->check(CLI::Validator(CheckWorkers, "N"));
  command
      ->add_option("--max-inflight", *max_inflight,
                   "Node attempts running at once across the run (default: unlimited)")
      ->check(CLI::Validator(CheckMaxInflight, "N"));
}

void AddDbOption(CLI::App* command, std::string* db) {
  command->add_option("--db", *db, "Checkpoint database (default: $KEEL_DB, else ./keel.db)");
}

void AddDurabilityOptions(CLI::App* command, std::string* durability, double* storage_timeout) {
  command
      ->add_option("--durability", *durability,
                   "normal: fast, a power loss may lose the last commits; full: fsync each commit")
      ->check(CLI::IsMember({"normal", "full"}))
      ->capture_default_str();
  command
      ->add_option("--storage-timeout", *storage_timeout,
                   "Seconds checkpoints may keep failing (disk full, I/O errors, the database "
                   "locked by another process) before the run stops; it can be resumed later")
      ->check(CLI::Range(0.0, 86400.0))
      ->capture_default_str();
}

// --log-format, shared by run, resume and fork.
void AddLogFormatOption(CLI::App* command, std::string* log_format) {
  command
      ->add_option("--log-format", *log_format,
                   "Progress on stderr: text, or json (one JSON object per line, with severity)")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
}

bool IsCommand(CLI::App& app, const std::string& word) {
  for (const CLI::App* sub : app.get_subcommands({})) {
    if (sub->get_name() == word) return true;
  }
  return false;
}

// The subcommand named on the command line, for "see keel X --help".
std::string CommandName(CLI::App& app, int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (IsCommand(app, argv[i])) return std::string("keel ") + argv[i];
  }
  return "keel";
}

int Main(int argc, char** argv) {
  CLI::App app{"Runs DAG workflows written in Lua, with checkpoints, resume and run history."};
  app.name("keel");
  app.footer(kFooter);
  app.set_version_flag("--version", std::string("keel ") + KEEL_VERSION);
  app.require_subcommand(1);
  app.fallthrough(false);
  std::function<int()> action;

  RunArgs run;
  auto* run_cmd = app.add_subcommand("run", "Run a workflow file");
  run_cmd->add_option("file", run.file, "Workflow script (.lua)")->required();
  run_cmd->add_option("-p,--param", run.params, "Override a parameter: key=value (repeatable)")
      ->allow_extra_args(false);
  AddDbOption(run_cmd, &run.db);
  AddExecutionOptions(run_cmd, &run.workers, &run.max_inflight);
  run_cmd->add_flag("--json", run.json, "Print the result as one JSON object");
  AddDurabilityOptions(run_cmd, &run.durability, &run.storage_timeout);
  AddLlmOptions(run_cmd, &run.llm);
  AddLogFormatOption(run_cmd, &run.log_format);
  run_cmd->add_flag("--wait", run.wait,
                    "Wait nodes wait in this process (for the signal or the timer) instead of "
                    "parking the run with exit code 4");
  run_cmd->add_flag("--no-work", run.no_work,
                    "PostgreSQL: queue the run and wait for it, leaving its nodes to keel worker "
                    "processes");
  run_cmd->callback([&] { action = [&] { return RunCommand(run); }; });

  RunArgs submit;
  auto* submit_cmd = app.add_subcommand(
      "submit", "Check a workflow file and record a run of it queued; keel resume or keel serve "
                "starts it");
  submit_cmd->add_option("file", submit.file, "Workflow script (.lua)")->required();
  submit_cmd->add_option("-p,--param", submit.params, "Override a parameter: key=value (repeatable)")
      ->allow_extra_args(false);
  AddDbOption(submit_cmd, &submit.db);
  submit_cmd->add_flag("--json", submit.json, "Print {\"run_id\": ..., \"status\": \"queued\"}");
  AddLlmOptions(submit_cmd, &submit.llm);
  submit_cmd->callback([&] { action = [&] { return SubmitCommand(submit); }; });

  ResumeArgs resume;
  auto* resume_cmd = app.add_subcommand("resume", "Continue a failed or interrupted run, or start a queued one");
  resume_cmd->add_option("run_id", resume.run_id, "Run id or a unique prefix of it")->required();
  resume_cmd->add_option("--from", resume.from,
                         "Run this node and everything downstream of it again, even in a "
                         "finished run");
  resume_cmd
      ->add_option("-p,--param", resume.params,
                   "Refused: a resume keeps the run's params (see keel fork)")
      ->allow_extra_args(false);
  AddDbOption(resume_cmd, &resume.db);
  AddExecutionOptions(resume_cmd, &resume.workers, &resume.max_inflight);
  resume_cmd->add_flag("--json", resume.json, "Print the result as one JSON object");
  AddDurabilityOptions(resume_cmd, &resume.durability, &resume.storage_timeout);
  AddLlmOptions(resume_cmd, &resume.llm);
  AddLogFormatOption(resume_cmd, &resume.log_format);
  resume_cmd->add_flag("--wait", resume.wait,
                       "Wait nodes wait in this process (for the signal or the timer) instead of "
                       "parking the run with exit code 4");
  resume_cmd->add_option("--handoff-epoch", resume.handoff_epoch)->group("");  // keel serve's
  resume_cmd->callback([&] { action = [&] { return ResumeCommand(resume); }; });

  ForkArgs fork;
  auto* fork_cmd = app.add_subcommand(
      "fork", "Start a new run from a recorded one, reusing the outputs upstream of --from");
  fork_cmd->add_option("run_id", fork.run_id, "Run id or a unique prefix of it")->required();
  fork_cmd->add_option("--from", fork.from,
                       "Run this node and everything downstream of it; reuse the rest "
                       "(default: run every node)");
  fork_cmd->add_option("-p,--param", fork.params, "Change a parameter: key=value (repeatable)")
      ->allow_extra_args(false);
  AddDbOption(fork_cmd, &fork.db);
  AddExecutionOptions(fork_cmd, &fork.workers, &fork.max_inflight);
  fork_cmd->add_flag("--json", fork.json, "Print the result as one JSON object");
  AddLogFormatOption(fork_cmd, &fork.log_format);
  AddDurabilityOptions(fork_cmd, &fork.durability, &fork.storage_timeout);
  AddLlmOptions(fork_cmd, &fork.llm);
  fork_cmd->add_flag("--queue", fork.queue,
                     "Record the fork queued and print its id; keel resume or keel serve starts it");
  fork_cmd->callback([&] { action = [&] { return ForkCommand(fork); }; });

  RunsArgs runs;
  auto* runs_cmd = app.add_subcommand("runs", "List recent runs, newest first");
  runs_cmd->add_option("--status", runs.status,
                       "Only runs with this status: queued, running, interrupted, waiting, "
                       "succeeded, failed, degraded, cancelled");
  runs_cmd->add_option("--workflow", runs.workflow, "Only runs of this workflow");
  runs_cmd->add_option("--state", runs.state,
                       "Only runs in this live state: queued, running, retrying, backing_off, "
                       "breaker_open, waiting_signal, waiting_timer, interrupted");
  runs_cmd->add_option("--limit", runs.limit, "How many runs to list (0: all)")
      ->check(CLI::Validator(CheckLimit, "N"))
      ->capture_default_str();
  runs_cmd->add_flag("--json", runs.json, "Print a JSON array");
  AddDbOption(runs_cmd, &runs.db);
  runs_cmd->callback([&] { action = [&] { return RunsCommand(runs); }; });

  ShowArgs show;
  auto* show_cmd = app.add_subcommand("show", "Show one run: its nodes, errors and events");
  show_cmd->add_option("run_id", show.run_id, "Run id or a unique prefix of it")->required();
  show_cmd->add_flag("--events", show.events, "Also print the event log");
  show_cmd->add_flag("--items", show.items, "List map items one by one instead of their counts");
  show_cmd->add_flag("--json", show.json, "Print one JSON object");
  show_cmd->add_option("--node", show.node,
                       "Show one node: its attempts, why it waits, its input and output");
  AddDbOption(show_cmd, &show.db);
  show_cmd->callback([&] { action = [&] { return ShowCommand(show); }; });

  GraphArgs graph;
  auto* graph_cmd =
      app.add_subcommand("graph", "Print a workflow's DAG, or a run's coloured by status");
  graph_cmd->add_option("target", graph.target, "Workflow script (.lua) or run id")->required();
  graph_cmd->add_option("--format", graph.format, "Output format")
      ->check(CLI::IsMember({"dot", "mermaid", "json"}))
      ->capture_default_str();
  graph_cmd->add_flag("--items", graph.items, "Draw map items one by one instead of their counts");
  AddDbOption(graph_cmd, &graph.db);
  graph_cmd->callback([&] { action = [&] { return GraphCommand(graph); }; });

  BreakersArgs breakers;
  auto* breakers_cmd = app.add_subcommand(
      "breakers", "List the circuit breakers and their health, reset them or set their state");
  auto* reset_opt =
      breakers_cmd->add_option("--reset", breakers.reset, "Delete the breaker with this key");
  auto* all_opt = breakers_cmd->add_flag("--all", breakers.all, "Delete every breaker");
  auto* force_open_opt = breakers_cmd->add_option(
      "--force-open", breakers.force_open, "Reject every call through this breaker until closed");
  auto* disable_opt = breakers_cmd->add_option(
      "--disable", breakers.disable,
      "Admit every call through this breaker (still counted) until closed");
  auto* close_opt = breakers_cmd->add_option(
      "--close", breakers.close, "Close this breaker (also ends --force-open and --disable)");
  auto* breakers_json = breakers_cmd->add_flag("--json", breakers.json, "Print a JSON array");
  auto* summary_opt = breakers_cmd->add_flag(
      "--summary", breakers.summary,
      "With --json: print an object with the aggregate (summary) and the breakers");
  summary_opt->needs(breakers_json);
  // One action at a time, and no listing with it.
  std::vector<CLI::Option*> breaker_actions = {reset_opt,   all_opt,   force_open_opt,
                                               disable_opt, close_opt, breakers_json};
  for (size_t i = 0; i < breaker_actions.size(); ++i) {
    for (size_t j = i + 1; j < breaker_actions.size(); ++j) {
      breaker_actions[i]->excludes(breaker_actions[j]);
    }
  }
  AddDbOption(breakers_cmd, &breakers.db);
  breakers_cmd->callback([&] { action = [&] { return BreakersCommand(breakers); }; });

  ValidateArgs validate;
  auto* validate_cmd = app.add_subcommand("validate", "Check a workflow file without running it");
  validate_cmd->add_option("file", validate.file, "Workflow script (.lua)")->required();
  validate_cmd->add_flag("--json", validate.json,
                         "Print the workflow's name, params (defaults) and node count as JSON");
  validate_cmd->callback([&] { action = [&] { return ValidateCommand(validate); }; });

  DoctorArgs doctor;
  AddDoctorCommand(app, &doctor, &action);
  SchedulesArgs schedules;
  auto* schedules_cmd = app.add_subcommand(
      "schedules", "List the keel.schedule declarations of the workflow files under a directory");
  schedules_cmd->add_option("--workflows", schedules.workflows, "Directory to search")
      ->capture_default_str();
  schedules_cmd->add_flag("--json", schedules.json, "Print JSON");
  schedules_cmd->callback([&] { action = [&] { return SchedulesCommand(schedules); }; });

  GcArgs gc;
  auto* gc_cmd = app.add_subcommand("gc", "Delete finished runs older than a duration");
  gc_cmd->add_option("--older-than", gc.older_than, "Age such as 90s, 15m, 12h, 7d or 2w")
      ->required();
  AddDbOption(gc_cmd, &gc.db);
  gc_cmd->callback([&] { action = [&] { return GcCommand(gc); }; });

  SignalArgs signal;
  auto* signal_cmd =
      app.add_subcommand("signal", "Send a signal to a run's wait node (kept until taken)");
  signal_cmd->add_option("run_id", signal.run_id, "Run id or a unique prefix of it")->required();
  signal_cmd->add_option("name", signal.name, "The signal's name")->required();
  std::string signal_data;
  auto* data_opt =
      signal_cmd->add_option("--data", signal_data, "The signal's data, JSON (default: null)");
  AddDbOption(signal_cmd, &signal.db);
  signal_cmd->callback([&] {
    if (data_opt->count() > 0) signal.data = signal_data;
    action = [&] { return SignalCommand(signal); };
  });

  CancelArgs cancel;
  auto* cancel_cmd = app.add_subcommand("cancel", "Cancel a run: running, waiting or interrupted");
  cancel_cmd->add_option("run_id", cancel.run_id, "Run id or a unique prefix of it")->required();
  AddDbOption(cancel_cmd, &cancel.db);
  cancel_cmd->callback([&] { action = [&] { return CancelCommand(cancel); }; });

  ServeArgs serve;
  auto* serve_cmd = app.add_subcommand(
      "serve", "Serve the JSON API, health and the runs over HTTP (the operator service)");
  serve_cmd->add_option("--listen", serve.listen, "HOST:PORT to listen on (port 0: any free one)")
      ->capture_default_str();
  AddDbOption(serve_cmd, &serve.db);
  serve_cmd->add_option("--workflows", serve.workflows,
                        "Directory of the workflow files runs may be started from")
      ->capture_default_str();
  serve_cmd->add_flag("--auto-resume", serve.auto_resume,
                      "Resume runs whose process died or was interrupted");
  serve_cmd->add_option("--resume-grace", serve.resume_grace,
                        "How long an interrupted run waits before it is resumed")
      ->capture_default_str();
  serve_cmd->add_option("--max-resumes", serve.max_resumes, "Automatic resumes per run at most")
      ->check(CLI::Range(0, 1000000))
      ->capture_default_str();
  serve_cmd->add_option("--token-env", serve.token_env,
                        "Environment variable holding the bearer token requests must send "
                        "(needed for any address but loopback)");
  serve_cmd->add_option("--max-runs", serve.max_runs, "Child runs at once; the rest wait queued")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  serve_cmd->add_option("--notify", serve.notify,
                        "Webhook URL for alerts (failed or degraded runs, breakers opening)");
  // Hidden: serves the dashboard's files from DIR, read on each request,
  // for developing the page without rebuilding (docs/reference.md).
  serve_cmd->add_option("--web-dir", serve.web_dir, "Serve the dashboard from DIR")->group("");
  serve_cmd->callback([&] { action = [&] { return ServeCommand(serve); }; });

  WorkerArgs worker;
  auto* worker_cmd = app.add_subcommand(
      "worker", "Run ready nodes of any run in a PostgreSQL database, until SIGTERM or SIGINT");
  AddDbOption(worker_cmd, &worker.db);
  worker_cmd->add_option("--concurrency", worker.concurrency, "Nodes at once")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  worker_cmd
      ->add_option("--lease", worker.lease,
                   "How long a claim outlives the worker's last heartbeat before other workers "
                   "take its nodes over")
      ->capture_default_str();
  worker_cmd->callback([&] { action = [&] { return WorkerCommand(worker); }; });

  if (argc == 1) {
    std::fprintf(stderr, "%s", app.help().c_str());
    return kExitUsage;
  }
  if (argv[1][0] != '-' && !IsCommand(app, argv[1])) {
    PrintError(
        std::string("unknown command '") + argv[1] +
         "'; commands: run, submit, resume, fork, runs, show, graph, breakers, validate, doctor, "
         "schedules, gc, signal, cancel, serve, worker (see keel --help)");
    return kExitUsage;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) {
      // --help or --version: printed through stdio like every other output,
      // so that a failed write is seen (and explained) by FinishStdout.
      std::ostringstream out;
      int code = app.exit(e, out, out);
      std::fputs(out.str().c_str(), stdout);
      return code;
    }
    PrintError(e.what());
    std::fprintf(stderr, "see '%s --help'\n", CommandName(app, argc, argv).c_str());
    return kExitUsage;
  }
  return action ? action() : kExitUsage;
}

}  // namespace
}  // namespace keel::cli

int main(int argc, char** argv) {
  keel::cli::DieWithParentIfAsked();
  keel::cli::SurviveSigpipe();
  int exit_code = keel::cli::Main(argc, argv);
  return keel::cli::FinishStdout(exit_code);
}
