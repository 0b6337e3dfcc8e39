// `keel worker --db postgresql://...`, and `keel submit` / `keel run` when
// the database is PostgreSQL: runs are queued node by node
// (store/postgres/pg_node_queue.h) and executed by every worker of the
// cluster (cli/worker.h).

#include <fmt/format.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <optional>
#include <thread>

#include "cli/commands.h"
#include "cli/db.h"
#include "cli/exit_codes.h"
#include "cli/llm_options.h"
#include "cli/load_script.h"
#include "cli/params.h"
#include "cli/queued_output.h"
#include "cli/recorded_script.h"
#include "cli/run_config.h"
#include "cli/run_output.h"
#include "cli/run_setup.h"
#include "cli/wait_hint.h"
#include "cli/worker.h"
#include "engine/clock.h"
#include "engine/runner.h"
#include "store/postgres/pg_connection.h"
#include "store/postgres/pg_node_queue.h"
#include "store/postgres/pg_rows.h"
#include "store/postgres/pg_schema.h"
#include "views/escalation_view.h"
#include "views/format.h"
#include "views/llm_usage.h"

namespace keel::cli {
namespace {

// SIGINT and SIGTERM, blocked in every thread and taken by one that asks
// the worker to stop: the first lets the nodes in flight finish, the
// second stops them and hands their claims back.
class StopOnSignals {
 public:
  explicit StopOnSignals(Worker* worker) : worker_(worker) {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
    thread_ = std::thread([this] {
      int seen = 0;
      timespec tick{0, 200 * 1000 * 1000};
      while (!done_.load()) {
        int sig = sigtimedwait(&set_, nullptr, &tick);
        if (sig < 0) continue;
        if (++seen == 1) {
          std::fprintf(stderr, "keel worker: stopping; nodes in flight finish first\n");
          worker_->RequestStop();
        } else {
          worker_->Abandon("the worker was interrupted twice");
          worker_->RequestStop();
        }
      }
    });
  }
  ~StopOnSignals() {
    done_.store(true);
    thread_.join();
  }

 private:
  Worker* worker_;
  sigset_t set_;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

// The escalation the last failed end of run `run_id` started (a worker ran
// it), from its events since it last started or resumed; nullopt when none.
Result<std::optional<EscalationSummary>> LastEscalation(pg::Connection& conn,
                                                        const std::string& run_id) {
  auto events = pg::ReadRows<EventRecord>(
      conn,
      std::string("SELECT ") + pg::kEventColumns +
          " FROM events WHERE run_id = $1 AND node = '' AND kind IN ('run_started', "
          "'run_resumed', 'escalation_started', 'escalation_finished') ORDER BY seq",
      {run_id}, "reading the escalations of run " + run_id,
      [](const pg::Rows& rows, int i, EventRecord* e) { pg::EventFromRow(rows, i, e); });
  if (!events.ok()) return events.status();
  std::vector<EventRecord> since;
  for (EventRecord& e : *events) {
    if (e.kind == "run_started" || e.kind == "run_resumed") {
      since.clear();
    } else {
      since.push_back(std::move(e));
    }
  }
  std::vector<EscalationSummary> escalations = ReadEscalations(since);
  if (escalations.empty()) return std::optional<EscalationSummary>();
  return std::optional<EscalationSummary>(escalations.back());
}

// The run's outcome as `keel run` prints it, read back from the database.
Result<RunReport> ReadReport(pg::Connection& conn, const std::string& run_id,
                             const WorkflowSpec& workflow) {
  auto work = pg::ReadRunToWork(conn, run_id, /*with_script=*/false);
  if (!work.ok()) return work.status();
  RunReport report;
  report.run_id = run_id;
  report.status = work->run.status;
  report.error = work->run.error;
  std::vector<bool> has_dependents(workflow.nodes.size(), false);
  for (const NodeSpec& n : workflow.nodes) {
    for (const std::string& dep : n.after) {
      int d = workflow.Find(dep);
      if (d >= 0) has_dependents[d] = true;
    }
  }
  for (size_t i = 0; i < workflow.nodes.size(); ++i) {
    NodeResult result{NodeStatus::kPending, nullptr, Status::Ok()};
    int attempts = 0;
    for (const NodeRecord& rec : work->nodes) {
      if (rec.node != workflow.nodes[i].name) continue;
      result.status = rec.status;
      if (rec.output_json) result.output = MakeJson(*rec.output_json);
      if (rec.error_kind != ErrorKind::kNone) {
        result.error = Status::Error(rec.error_kind, rec.error_message);
      }
      attempts = rec.attempts;
    }
    if (!has_dependents[i] && result.output) {
      report.outputs.emplace_back(workflow.nodes[i].name, result.output);
    }
    report.outcome.results.push_back(result);
    report.outcome.attempts.push_back(attempts);
  }
  report.outcome.status = report.status;
  report.outcome.error = report.error;
  if (report.status == RunStatus::kFailed) {
    auto escalation = LastEscalation(conn, run_id);
    if (!escalation.ok()) return escalation.status();
    if (*escalation) {
      report.outcome.escalation = (*escalation)->workflow;
      ParseRunStatus((*escalation)->status, &report.outcome.escalation_status);
      report.outcome.escalation_error = (*escalation)->error;
    }
  }
  return report;
}

// Queues a run of `script` (loaded from `args.file` here when null) in the
// PostgreSQL database `url`; prints nothing. Sets *loaded to the script.
Result<std::string> Submit(const RunArgs& args, const std::string& url,
                           std::shared_ptr<LoadedScript> script,
                           std::shared_ptr<LoadedScript>* loaded) {
  auto syntax = ApplyParamOverrides(nullptr, args.params);
  if (!syntax.ok()) return syntax.status();
  if (!script) script = LoadScript(args.file, ProviderUrls(args.llm.providers));
  if (!script) return Status::Error(ErrorKind::kPermanent, "");
  const WorkflowSpec& workflow = script->main_workflow();
  auto params = ApplyParamOverrides(workflow.params, args.params);
  if (!params.ok()) return params.status();
  auto conn = pg::Connection::Open(url);
  if (!conn.ok()) return conn.status();
  Status migrated = pg::Migrate(**conn);
  if (!migrated.ok()) return migrated;

  Runner ids(SystemClock(), nullptr, nullptr);
  double now = SystemClock()->WallNow();
  RunRecord run;
  run.workflow = workflow.name;
  run.script_path = script->info.path;
  run.script_sha256 = script->info.sha256;
  run.script_text = script->info.text;
  run.modules = script->info.modules;
  run.params_json = **params;
  run.status = RunStatus::kRunning;
  run.heartbeat = run.created_at = run.updated_at = now;
  run.node_count = static_cast<int>(workflow.nodes.size());
  run.config_json = ConfigJson(ConfigFromArgs(args.llm, args.max_inflight));
  Status submitted;
  for (int attempt = 0; attempt < 5; ++attempt) {
    run.id = ids.NewRunId();
    submitted = pg::SubmitRun(**conn, run, workflow, now);
    if (submitted.ok()) break;
  }
  if (!submitted.ok()) return submitted;
  *loaded = script;
  return run.id;
}

// How `keel run` and `keel resume` on PostgreSQL work on their run and report it.
struct Follow {
  int workers = 0;          // --workers: nodes at once; <= 0: 16
  bool work = true;         // claim nodes (false: --no-work)
  bool json = false;        // --json
  bool hold_waits = false;  // --wait: a run parked on its waits is waited for too
  std::string db_flag;      // --db as given, for the commands the hints print
  double began = 0;         // when the command started (monotonic seconds)
};

int WorkAndReport(const std::string& url, const std::string& id, const WorkflowSpec& workflow,
                  const Follow& follow);

int SubmitError(const Status& status) {
  if (status.message().empty()) return kExitUsage;  // the loader printed why
  return UsageError(status.message());
}

}  // namespace

int WorkerCommand(const WorkerArgs& args) {
  std::string db = ResolveDbPath(args.db);
  if (!pg::IsPostgresUrl(db)) {
    return UsageError(fmt::format(
        "keel worker needs a PostgreSQL database (--db postgresql://USER@HOST/DB); {} is a "
        "SQLite file, which only one machine can run",
        db));
  }
  double lease = 0;
  if (!ParseDuration(args.lease, &lease) || lease < 0.1) {
    return UsageError(fmt::format(
        "--lease: expected a duration of at least 100ms such as 15s or 1m, got '{}'", args.lease));
  }
  WorkerOptions options;
  options.url = db;
  options.concurrency = args.concurrency;
  options.lease_s = lease;
  Worker worker(options);
  StopOnSignals signals(&worker);
  Status started = worker.Start();
  if (!started.ok()) return UsageError(started.message());
  std::fprintf(stderr, "keel worker %s: working on %s, %d at a time, lease %s\n",
               worker.id().c_str(), pg::RedactUrl(db).c_str(), args.concurrency,
               args.lease.c_str());
  Status ran = worker.Run();
  if (!ran.ok()) return UsageError(ran.message());
  return kExitSucceeded;
}

int DistributedSubmit(const RunArgs& args, const std::string& url) {
  std::shared_ptr<LoadedScript> script;
  auto id = Submit(args, url, nullptr, &script);
  if (!id.ok()) return SubmitError(id.status());
  RunReport report;
  report.run_id = *id;
  return PrintQueued(report, args.json);
}

int DistributedRun(const RunArgs& args, const std::string& url,
                   std::shared_ptr<LoadedScript> loaded) {
  double began = SystemClock()->Now();
  std::shared_ptr<LoadedScript> script;
  auto id = Submit(args, url, std::move(loaded), &script);
  if (!id.ok()) return SubmitError(id.status());
  const WorkflowSpec& workflow = script->main_workflow();
  std::fprintf(stderr, "run %s started: workflow %s (%zu nodes) on %s%s\n", id->c_str(),
               workflow.name.c_str(), workflow.nodes.size(), pg::RedactUrl(url).c_str(),
               args.no_work ? "; waiting for workers" : "");
  return WorkAndReport(url, *id, workflow,
                       {args.workers, !args.no_work, args.json, args.wait, args.db, began});
}

int DistributedResume(const ResumeArgs& args, const std::string& url, const RunRecord& run) {
  double began = SystemClock()->Now();
  if (run.status == RunStatus::kSucceeded && args.from.empty()) {
    std::fprintf(stderr, "run %s already succeeded; nothing to resume\n", run.id.c_str());
    return kExitSucceeded;
  }
  auto conn = pg::Connection::Open(url);
  if (!conn.ok()) return UsageError(conn.status().message());
  auto work = pg::ReadRunToWork(**conn, run.id, /*with_script=*/true);
  if (!work.ok()) return UsageError(work.status().message());
  auto script = LoadRecordedScript(work->script);
  if (!script.ok()) return UsageError(script.status().message());
  const WorkflowSpec* workflow = (*script)->Find(run.workflow);
  if (workflow == nullptr) {
    return UsageError(fmt::format("cannot resume run {}: its script no longer declares '{}'",
                                  run.id, run.workflow));
  }
  std::optional<pg::Rerun> rerun;
  if (!args.from.empty()) {
    auto nodes = RerunSet(*workflow, args.from, run.id);
    if (!nodes.ok()) return UsageError(nodes.status().message());
    rerun = pg::Rerun{args.from, std::vector<std::string>(nodes->begin(), nodes->end())};
    std::sort(rerun->nodes.begin(), rerun->nodes.end());
  }
  Status resumed = pg::ResumeRun(**conn, run.id, *workflow, SystemClock()->WallNow(),
                                 rerun ? &*rerun : nullptr);
  if (!resumed.ok()) return UsageError(resumed.message());
  int kept = 0;
  for (const NodeRecord& rec : work->nodes) {
    if (workflow->Find(rec.node) >= 0 && IsKeptOnResume(rec.status) &&
        !(rerun && std::count(rerun->nodes.begin(), rerun->nodes.end(), rec.node))) {
      ++kept;
    }
  }
  std::fprintf(stderr, "run %s resumed: %d of %zu nodes kept\n", run.id.c_str(), kept,
               workflow->nodes.size());
  return WorkAndReport(url, run.id, *workflow,
                       {args.workers, true, args.json, args.wait, args.db, began});
}

Result<bool> IsDistributedRun(const std::string& url, const std::string& run_id) {
  auto conn = pg::Connection::Open(url);
  if (!conn.ok()) return conn.status();
  auto version = pg::SchemaVersion(**conn);
  if (!version.ok()) return version.status();
  if (*version < 2) return false;  // no worker ever ran here
  auto id = (*conn)->Exec("SELECT id FROM runs WHERE id LIKE $1 || '%' LIMIT 2", {run_id},
                          "reading run " + run_id);
  if (!id.ok()) return id.status();
  if (id->size() != 1) return false;  // the store says why
  return pg::IsDistributed(**conn, id->str(0, 0));
}

namespace {

int WorkAndReport(const std::string& url, const std::string& id, const WorkflowSpec& workflow,
                  const Follow& follow) {
  WorkerOptions options;
  options.url = url;
  options.concurrency = follow.workers > 0 ? follow.workers : 16;
  options.until_run = id;
  options.claim = follow.work;
  options.hold_waits = follow.hold_waits;
  Worker worker(options);
  {
    StopOnSignals signals(&worker);
    Status started = worker.Start();
    if (!started.ok()) return UsageError(started.message());
    Status ran = worker.Run();
    if (!ran.ok()) return UsageError(ran.message());
  }
  auto conn = pg::Connection::Open(url);
  if (!conn.ok()) return UsageError(conn.status().message());
  auto report = ReadReport(**conn, id, workflow);
  if (!report.ok()) return UsageError(report.status().message());
  if (report->status == RunStatus::kRunning) {
    PrintError(fmt::format("stopped waiting for run {}; the workers carry it on", id));
    return kExitFailed;
  }
  LlmTotals usage;
  auto events = pg::ReadRows<EventRecord>(**conn,
                                      std::string("SELECT ") + pg::kEventColumns +
                                          " FROM events WHERE run_id = $1 AND kind IN "
                                          "('llm_call', 'fallback_event') ORDER BY seq",
                                      {id}, "reading the run's LLM calls",
                                      [](const pg::Rows& rows, int i, EventRecord* e) {
                                        pg::EventFromRow(rows, i, e);
                                      });
  if (events.ok()) usage = SumLlmUsage(*events).total;
  PrintRunReport(*report, workflow, SystemClock()->Now() - follow.began, usage, follow.json);
  if (report->status == RunStatus::kWaiting) {
    PrintWaitHint(*report, workflow, follow.db_flag, /*distributed=*/true);
  }
  return ExitCodeFor(report->status);
}

}  // namespace

}  // namespace keel::cli
