#include "engine/runner.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <ctime>
#include <memory>
#include <random>
#include <unordered_set>

#include "engine/event_data.h"
#include "engine/dynamic_node.h"
#include "engine/mutex.h"
#include "engine/process_owner.h"
#include "engine/rerun.h"
#include "engine/run_history.h"

namespace keel {
namespace {

constexpr double kHeartbeatSeconds = 5.0;
// How often the store's health is looked at while a run executes, so that a
// run whose checkpoints cannot be saved stops even while nothing finishes.
constexpr double kWatchSeconds = 0.5;
constexpr char kCancelledReason[] = "cancelled by keel cancel";

// While alive, writes the run's heartbeat every few seconds, and stops the
// executor's runs once the store gives up on its storage or `keel cancel`
// asks the run to stop, on the clock's timer thread. The destructor, the
// timer callback and cancelled() synchronize on mu.
class RunWatch {
 public:
  RunWatch(Clock* clock, Store* store, Executor* executor, std::string run_id)
      : shared_(std::make_shared<Shared>(clock, store, executor, std::move(run_id))) {
    MutexLock lock(&shared_->mu);
    Schedule(shared_);
  }
  ~RunWatch() {
    MutexLock lock(&shared_->mu);
    shared_->stopped = true;
    shared_->clock->Cancel(shared_->timer);
  }
  RunWatch(const RunWatch&) = delete;
  RunWatch& operator=(const RunWatch&) = delete;

  // Whether it stopped the run because `keel cancel` asked.
  bool cancelled() const {
    MutexLock lock(&shared_->mu);
    return shared_->cancelled;
  }

 private:
  struct Shared {
    Shared(Clock* c, Store* s, Executor* e, std::string id)
        : clock(c), store(s), executor(e), run_id(std::move(id)), last_beat(c->Now()) {}
    Clock* clock;
    Store* store;
    Executor* executor;
    const std::string run_id;
    Mutex mu;
    bool stopped GUARDED_BY(mu) = false;
    bool cancelled GUARDED_BY(mu) = false;
    TimerId timer GUARDED_BY(mu) = 0;
    double last_beat GUARDED_BY(mu);
  };
  static void Schedule(const std::shared_ptr<Shared>& shared) EXCLUSIVE_LOCKS_REQUIRED(shared->mu) {
    std::weak_ptr<Shared> weak = shared;
    shared->timer = shared->clock->After(kWatchSeconds, [weak] {
      auto s = weak.lock();
      if (!s) return;
      MutexLock lock(&s->mu);
      if (s->stopped) return;
      Status health = s->store->WriteHealth();
      if (!health.ok()) {
        s->executor->Stop("cannot save checkpoints: " + health.message());
        return;
      }
      auto cancel = s->store->CancelRequested(s->run_id);
      if (cancel.ok() && *cancel) {
        s->cancelled = true;
        s->executor->Stop(kCancelledReason);
        return;
      }
      if (s->clock->Now() - s->last_beat >= kHeartbeatSeconds) {
        s->last_beat = s->clock->Now();
        s->store->Heartbeat(s->run_id, s->clock->WallNow());
      }
      Schedule(s);
    });
  }
  std::shared_ptr<Shared> shared_;
};

// Why run `run_id` could not be recorded: `health` names the cause. A run
// taken over by another process, or a database file gone, is final (kPermanent); any
// other cause leaves a run that a resume finishes (kTransient). The message
// starts "run RUN_ID stopped".
Status CheckpointFailure(const std::string& run_id, const Status& health) {
  if (health.kind() == ErrorKind::kPermanent) {
    return Status::Error(ErrorKind::kPermanent, "run " + run_id + " stopped: " + health.message());
  }
  return Status::Error(ErrorKind::kTransient,
                       "run " + run_id + " stopped: cannot save checkpoints: " + health.message());
}

// The data of run_started and run_resumed: `extra` adds script_version,
// from (resume --from, fork --from) and forked_from (fork).
struct RunEventExtra {
  int script_version = 1;
  std::string from;
  std::string forked_from;
};
std::string RunEventData(int nodes, int kept, bool script_changed,
                         const RunEventExtra& extra = {}) {
  EventData data;
  data.Add("nodes", nodes).Add("kept", kept).Add("script_changed", script_changed);
  data.Add("script_version", extra.script_version);
  if (!extra.from.empty()) data.Add("from", extra.from);
  if (!extra.forked_from.empty()) data.Add("forked_from", extra.forked_from);
  return data.Done();
}

std::string FinishEventData(const RunOutcome& outcome) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("status");
  std::string_view status = RunStatusName(outcome.status);
  w.String(status.data(), static_cast<rapidjson::SizeType>(status.size()));
  if (!outcome.error.empty()) {
    w.Key("error");
    w.String(outcome.error.c_str(), static_cast<rapidjson::SizeType>(outcome.error.size()));
  }
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace

Runner::Runner(Clock* clock, Store* store, Observer* observer)
    : clock_(clock), store_(store), observer_(observer), executor_(clock, store, observer) {}

std::string Runner::NewRunId() {
  std::time_t t = static_cast<std::time_t>(clock_->WallNow());
  std::tm tm{};
  // Local time, as `keel runs` shows STARTED and progress lines their stamps.
  localtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%y%m%d-%H%M%S", &tm);
  static std::mt19937 rng{std::random_device{}()};
  static Mutex rng_mu;
  unsigned suffix;
  {
    MutexLock lock(&rng_mu);
    suffix = rng() & 0xffff;
  }
  char id[48];
  std::snprintf(id, sizeof id, "%s-%04x", stamp, suffix);
  return id;
}

// A new run record of `workflow` from `script` with `params`, owned by this
// process; its id is left to CreateWithFreshId.
static RunRecord NewRun(const WorkflowSpec& workflow, const ScriptInfo& script,
                        const JsonText& params, double now) {
  RunRecord run;
  run.workflow = workflow.name;
  run.script_path = script.path;
  run.script_sha256 = script.sha256;
  run.script_text = script.text;
  run.modules = script.modules;
  run.params_json = *params;
  run.owner = CurrentOwner();
  run.created_at = run.updated_at = run.heartbeat = now;
  run.node_count = static_cast<int>(workflow.nodes.size());
  return run;
}

// A new run recorded queued: owned by no process (pid 0 on this host reads
// as dead), nothing run yet.
static void MarkQueued(RunRecord* run) {
  run->status = RunStatus::kQueued;
  run->owner = Owner{0, CurrentOwner().host, 0};
}

static RunReport QueuedReport(const std::string& run_id) {
  RunReport report;
  report.run_id = run_id;
  report.status = RunStatus::kQueued;
  report.outcome.status = RunStatus::kQueued;
  return report;
}

Status Runner::CreateWithFreshId(RunRecord* run, const std::vector<NodeRecord>& kept) {
  Status created;
  for (int tries = 0; tries < 5; ++tries) {
    run->id = NewRunId();
    created = kept.empty() ? store_->CreateRun(*run) : store_->CreateForkedRun(*run, kept);
    if (created.ok()) break;
  }
  return created;
}

Result<RunReport> Runner::Start(const WorkflowSpec& workflow, const ScriptInfo& script,
                                JsonText params, const ExecutorOptions& options) {
  RunRecord run = NewRun(workflow, script, params, clock_->WallNow());
  run.config_json = config_json_;
  if (queue_only_) MarkQueued(&run);
  Status created = CreateWithFreshId(&run, {});
  if (!created.ok()) return created;
  if (queue_only_) return QueuedReport(run.id);
  store_->AppendEvent({run.id, 0, run.created_at, "", "run_started",
                       RunEventData(run.node_count, 0, false)});
  return Execute(workflow, run.id, std::move(params), {}, options, RunHistory{});
}

Result<RunReport> Runner::Fork(const RunRecord& source, const std::string& from,
                               const WorkflowSpec& workflow, const ScriptInfo& script,
                               JsonText params, const ExecutorOptions& options) {
  std::vector<NodeRecord> kept;
  if (!from.empty()) {
    auto rerun = NodesFrom(workflow, from);
    if (!rerun.ok()) return rerun.status();
    const std::unordered_set<std::string> dropped(rerun->begin(), rerun->end());
    std::unordered_set<std::string> names;
    for (const NodeSpec& node : workflow.nodes) names.insert(node.name);
    auto recorded = store_->GetNodes(source.id);
    if (!recorded.ok()) return recorded.status();
    // Nodes (and their inner nodes) the workflow still has, not downstream.
    for (NodeRecord& node : *recorded) {
      if (IsKeptOnResume(node.status) && RecordOfAny(node.node, names) &&
          !RecordOfAny(node.node, dropped)) {
        kept.push_back(std::move(node));
      }
    }
  }
  RunRecord run = NewRun(workflow, script, params, clock_->WallNow());
  run.config_json = config_json_;
  run.forked_from = source.id;
  run.forked_from_node = from;
  if (queue_only_) MarkQueued(&run);
  Status created = CreateWithFreshId(&run, kept);
  if (!created.ok()) return created;
  if (queue_only_) return QueuedReport(run.id);
  std::unordered_map<std::string, NodeRecord> earlier;
  for (NodeRecord& node : kept) {
    node.run_id = run.id;
    std::string name = node.node;
    earlier.emplace(std::move(name), std::move(node));
  }
  int restored = 0;
  for (const NodeSpec& node : workflow.nodes) restored += earlier.count(node.name) ? 1 : 0;
  store_->AppendEvent(
      {run.id, 0, run.created_at, "", "run_started",
       RunEventData(run.node_count, restored, false,
                    RunEventExtra{.script_version = 1, .from = from, .forked_from = source.id})});
  auto report = Execute(workflow, run.id, std::move(params), earlier, options, RunHistory{});
  if (report.ok()) report->restored = restored;
  return report;
}

// Fails (kPermanent) when a node recorded finished in `nodes` is not in
// `workflow`.
static Status CheckKeptNodes(const std::vector<NodeRecord>& nodes, const WorkflowSpec& workflow,
                             const std::string& run_id, const std::string& script_path) {
  std::unordered_set<std::string_view> names;
  for (const auto& node : workflow.nodes) names.insert(node.name);
  for (const auto& rec : nodes) {
    // Map items and inner nodes are checked by the node that runs them.
    if (IsKeptOnResume(rec.status) && !names.count(rec.node) && !IsInnerNodeName(rec.node)) {
      return Status::Error(ErrorKind::kPermanent,
                           "node '" + rec.node + "' finished in run " + run_id +
                               " but no longer exists in " + script_path +
                               "; restore it or start a new run");
    }
  }
  return Status::Ok();
}

Result<RunReport> Runner::Resume(const RunRecord& run, const WorkflowSpec& workflow,
                                 const ScriptInfo& script, const ExecutorOptions& options,
                                 const std::string& from) {
  std::vector<std::string> rerun;
  if (!from.empty()) {
    auto nodes = NodesFrom(workflow, from);
    if (!nodes.ok()) return nodes.status();
    rerun = std::move(nodes).value();
  }
  // Checked before claiming, so a script that lost a node leaves the run as
  // it is; and again on what the claim read, which is what counts.
  auto nodes = store_->GetNodes(run.id);
  if (!nodes.ok()) return nodes.status();
  Status usable = CheckKeptNodes(*nodes, workflow, run.id, script.path);
  if (!usable.ok()) return usable;
  nodes->clear();

  RunRecord claim = run;
  claim.owner = CurrentOwner();
  claim.heartbeat = claim.updated_at = clock_->WallNow();
  claim.script_path = script.path;
  claim.script_sha256 = script.sha256;
  claim.script_text = script.text;
  claim.modules = script.modules;
  claim.config_json = config_json_;
  claim.node_count = static_cast<int>(workflow.nodes.size());
  claim.workflow = workflow.name;
  auto alive = [handoff = handoff_](const Owner& owner, double heartbeat_age) {
    return !handoff && OwnerAlive(owner, heartbeat_age);
  };
  auto claimed = from.empty() ? store_->ClaimRun(claim, run.epoch, alive)
                              : store_->ClaimRunForRerun(claim, run.epoch, from, rerun, alive);
  if (!claimed.ok()) return claimed.status();
  const RunRecord& before = claimed->before;
  usable = CheckKeptNodes(claimed->nodes, workflow, run.id, script.path);
  if (!usable.ok()) {
    // The run is this process's now: give it back as it was found.
    store_->FinishRun(run.id, before.status, before.error, before.finished_at);
    (void)store_->Flush();
    return usable;
  }
  std::unordered_map<std::string, NodeRecord> earlier;
  int kept = 0;
  for (auto& rec : claimed->nodes) {
    if (IsKeptOnResume(rec.status) && !IsInnerNodeName(rec.node)) ++kept;
    std::string name = rec.node;
    earlier.emplace(std::move(name), std::move(rec));
  }
  bool changed = !claimed->changed_files.empty();
  // A queued run starts here: run_started, as `keel run` or `keel fork` records it.
  const bool starting = before.status == RunStatus::kQueued;
  store_->AppendEvent(
      {run.id, 0, claim.updated_at, "", starting ? "run_started" : "run_resumed",
       RunEventData(claim.node_count, kept, changed,
                    RunEventExtra{.script_version = claimed->script_version,
                                  .from = starting ? before.forked_from_node : from,
                                  .forked_from = starting ? before.forked_from : ""})});
  auto events = store_->GetEvents(run.id);
  if (!events.ok()) return events.status();
  RunHistory history = ReadRunHistory(*events);
  events->clear();
  auto report = Execute(workflow, run.id, MakeJson(before.params_json), earlier, options, history);
  if (report.ok()) {
    report->script_changed = changed;
    report->restored = kept;
  }
  return report;
}

Result<RunReport> Runner::Execute(const WorkflowSpec& workflow, const std::string& run_id,
                                  JsonText params,
                                  const std::unordered_map<std::string, NodeRecord>& earlier,
                                  const ExecutorOptions& options, const RunHistory& history) {
  RunReport report;
  report.run_id = run_id;
  bool cancelled;
  {
    RunWatch watch(clock_, store_, &executor_, run_id);
    report.outcome = executor_.Run(workflow, run_id, std::move(params), earlier, options, history);
    cancelled = watch.cancelled();
  }
  // A run stopped for its storage is not finished: it stays resumable.
  Status health = store_->WriteHealth();
  if (!health.ok()) return CheckpointFailure(run_id, health);
  // A run that had failed on its own before `keel cancel` came stays
  // failed: the cancel stopped only its escalation.
  if (cancelled && report.outcome.escalation.empty() &&
      (report.outcome.status == RunStatus::kFailed ||
       report.outcome.status == RunStatus::kWaiting)) {
    // Finished nodes stay recorded; the stopped ones were recorded cancelled.
    report.outcome.status = RunStatus::kCancelled;
    report.outcome.error = kCancelledReason;
  }
  report.status = report.outcome.status;
  report.error = report.outcome.error;
  std::unordered_set<std::string_view> depended_on;
  for (const auto& node : workflow.nodes) depended_on.insert(node.after.begin(), node.after.end());
  for (size_t i = 0; i < workflow.nodes.size(); ++i) {
    const NodeResult& result = report.outcome.results[i];
    if (!depended_on.count(workflow.nodes[i].name) && result.output && Succeeded(result.status)) {
      report.outputs.emplace_back(workflow.nodes[i].name, result.output);
    }
  }
  double now = clock_->WallNow();
  store_->AppendEvent({run_id, 0, now, "", "run_finished", FinishEventData(report.outcome)});
  store_->FinishRun(run_id, report.status, report.error, now);
  Status flushed = store_->Flush();
  if (!flushed.ok()) return CheckpointFailure(run_id, flushed);
  return report;
}

}  // namespace keel
