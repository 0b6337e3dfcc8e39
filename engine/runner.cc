#include "engine/runner.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <ctime>
#include <memory>
#include <mutex>
#include <random>
#include <unordered_set>

#include "engine/process_owner.h"
#include "engine/run_history.h"

namespace keel {
namespace {

constexpr double kHeartbeatSeconds = 5.0;

// Writes the run's heartbeat every few seconds on the clock's timer thread
// until destroyed. Stop() and the timer callback synchronize on mu_.
class Heartbeat {
 public:
  Heartbeat(Clock* clock, Store* store, std::string run_id)
      : shared_(std::make_shared<Shared>(clock, store, std::move(run_id))) {
    Schedule(shared_);
  }
  ~Heartbeat() {
    std::lock_guard<std::mutex> lock(shared_->mu);
    shared_->stopped = true;
    shared_->clock->Cancel(shared_->timer);
  }

 private:
  struct Shared {
    Shared(Clock* c, Store* s, std::string id) : clock(c), store(s), run_id(std::move(id)) {}
    Clock* clock;
    Store* store;
    const std::string run_id;
    std::mutex mu;
    bool stopped = false;  // guarded by mu
    TimerId timer = 0;     // guarded by mu
  };
  static void Schedule(const std::shared_ptr<Shared>& shared) {
    std::weak_ptr<Shared> weak = shared;
    shared->timer = shared->clock->After(kHeartbeatSeconds, [weak] {
      auto s = weak.lock();
      if (!s) return;
      std::lock_guard<std::mutex> lock(s->mu);
      if (s->stopped) return;
      s->store->Heartbeat(s->run_id, s->clock->WallNow());
      Schedule(s);
    });
  }
  std::shared_ptr<Shared> shared_;
};

std::string RunEventData(int nodes, int kept, bool script_changed) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("nodes");
  w.Int(nodes);
  w.Key("kept");
  w.Int(kept);
  w.Key("script_changed");
  w.Bool(script_changed);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
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
  gmtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%y%m%d-%H%M%S", &tm);
  static std::mt19937 rng{std::random_device{}()};
  static std::mutex rng_mu;
  unsigned suffix;
  {
    std::lock_guard<std::mutex> lock(rng_mu);
    suffix = rng() & 0xffff;
  }
  char id[48];
  std::snprintf(id, sizeof id, "%s-%04x", stamp, suffix);
  return id;
}

Result<RunReport> Runner::Start(const WorkflowSpec& workflow, const ScriptInfo& script,
                                JsonText params, const ExecutorOptions& options) {
  RunRecord run;
  run.workflow = workflow.name;
  run.script_path = script.path;
  run.script_sha256 = script.sha256;
  run.script_text = script.text;
  run.params_json = *params;
  run.owner = CurrentOwner();
  run.created_at = run.updated_at = run.heartbeat = clock_->WallNow();
  run.node_count = static_cast<int>(workflow.nodes.size());
  Status created;
  for (int tries = 0; tries < 5; ++tries) {
    run.id = NewRunId();
    created = store_->CreateRun(run);
    if (created.ok()) break;
  }
  if (!created.ok()) return created;
  store_->AppendEvent({run.id, 0, run.created_at, "", "run_started",
                       RunEventData(run.node_count, 0, false)});
  return Execute(workflow, run.id, std::move(params), {}, options, RunHistory{});
}

Result<RunReport> Runner::Resume(const RunRecord& run, const WorkflowSpec& workflow,
                                 const ScriptInfo& script, const ExecutorOptions& options) {
  auto nodes = store_->GetNodes(run.id);
  if (!nodes.ok()) return nodes.status();
  std::unordered_set<std::string_view> names;
  for (const auto& node : workflow.nodes) names.insert(node.name);
  std::unordered_map<std::string, NodeRecord> earlier;
  int kept = 0;
  for (auto& rec : *nodes) {
    if (IsKeptOnResume(rec.status)) {
      if (!names.count(rec.node)) {
        return Status::Error(ErrorKind::kPermanent,
                             "node '" + rec.node + "' finished in run " + run.id +
                                 " but no longer exists in " + script.path +
                                 "; restore it or start a new run");
      }
      ++kept;
    }
    std::string name = rec.node;
    earlier.emplace(std::move(name), std::move(rec));
  }
  RunRecord claim = run;
  claim.owner = CurrentOwner();
  claim.heartbeat = claim.updated_at = clock_->WallNow();
  claim.script_path = script.path;
  claim.script_sha256 = script.sha256;
  claim.script_text = script.text;
  claim.node_count = static_cast<int>(workflow.nodes.size());
  claim.workflow = workflow.name;
  Status claimed = store_->ClaimRun(claim, [](const Owner& owner, double heartbeat_age) {
    return OwnerAlive(owner, heartbeat_age);
  });
  if (!claimed.ok()) return claimed;
  bool changed = run.script_sha256 != script.sha256;
  store_->AppendEvent({run.id, 0, claim.updated_at, "", "run_resumed",
                       RunEventData(claim.node_count, kept, changed)});
  auto events = store_->GetEvents(run.id);
  if (!events.ok()) return events.status();
  RunHistory history = ReadRunHistory(*events);
  events->clear();
  auto report = Execute(workflow, run.id, MakeJson(run.params_json), earlier, options, history);
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
  {
    Heartbeat heartbeat(clock_, store_, run_id);
    report.outcome = executor_.Run(workflow, run_id, std::move(params), earlier, options, history);
  }
  report.status = report.outcome.status;
  report.error = report.outcome.error;
  std::unordered_set<std::string_view> depended_on;
  for (const auto& node : workflow.nodes) depended_on.insert(node.after.begin(), node.after.end());
  for (size_t i = 0; i < workflow.nodes.size(); ++i) {
    const NodeResult& result = report.outcome.results[i];
    if (!depended_on.count(workflow.nodes[i].name) && result.output) {
      report.outputs.emplace_back(workflow.nodes[i].name, result.output);
    }
  }
  double now = clock_->WallNow();
  store_->AppendEvent({run_id, 0, now, "", "run_finished", FinishEventData(report.outcome)});
  store_->FinishRun(run_id, report.status, report.error, now);
  Status flushed = store_->Flush();
  if (!flushed.ok()) {
    return Status::Error(flushed.kind(), "run " + run_id + " finished " +
                                             std::string(RunStatusName(report.status)) +
                                             " but its checkpoint could not be saved: " +
                                             flushed.message());
  }
  return report;
}

}  // namespace keel
