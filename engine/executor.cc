#include "engine/executor.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <atomic>
#include <exception>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <oneapi/tbb/flow_graph.h>
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/info.h>
#include <oneapi/tbb/task_arena.h>

namespace keel {
namespace {

// Event payloads are small JSON objects; this builds them.
class EventData {
 public:
  EventData() : writer_(buf_) { writer_.StartObject(); }
  EventData& Add(const char* key, const std::string& value) {
    writer_.Key(key);
    writer_.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
    return *this;
  }
  EventData& Add(const char* key, double value) {
    writer_.Key(key);
    writer_.Double(value);
    return *this;
  }
  EventData& Add(const char* key, int value) {
    writer_.Key(key);
    writer_.Int(value);
    return *this;
  }
  std::string Done() {
    writer_.EndObject();
    return std::string(buf_.GetString(), buf_.GetSize());
  }

 private:
  rapidjson::StringBuffer buf_;
  rapidjson::Writer<rapidjson::StringBuffer> writer_;
};

std::string_view EventKindFor(NodeStatus status) {
  switch (status) {
    case NodeStatus::kSucceeded:
      return "node_succeeded";
    case NodeStatus::kSkipped:
      return "node_skipped";
    case NodeStatus::kCancelled:
      return "node_cancelled";
    case NodeStatus::kFallback:
      return "node_fallback";
    default:
      return "node_failed";
  }
}

// The state of one Run() call. Per-node fields follow one rule: a node's
// slot is written only by the thread that launches or completes that node,
// and is published to its dependents by the acq_rel decrement of their
// `pending` counters, so dependents read it without a lock.
class RunState {
 public:
  RunState(const WorkflowSpec& wf, std::string run_id, JsonText params, Clock* clock, Store* store,
           Observer* observer)
      : wf_(wf),
        run_id_(std::move(run_id)),
        params_(std::move(params)),
        clock_(clock),
        store_(store),
        observer_(observer),
        slots_(wf.nodes.size()) {
    std::unordered_map<std::string_view, int> index;
    for (size_t i = 0; i < wf.nodes.size(); ++i) index.emplace(wf.nodes[i].name, int(i));
    for (size_t i = 0; i < wf.nodes.size(); ++i) {
      for (const auto& dep : wf.nodes[i].after) {
        int d = index.at(dep);
        slots_[i].deps.push_back(d);
        slots_[d].dependents.push_back(static_cast<int>(i));
      }
    }
  }

  // Marks nodes kept from an earlier attempt as done and counts what the
  // others wait for. Returns the nodes that can start now.
  std::vector<int> Prepare(const std::unordered_map<std::string, NodeRecord>& earlier) {
    for (size_t i = 0; i < slots_.size() && !earlier.empty(); ++i) {
      auto it = earlier.find(wf_.nodes[i].name);
      if (it == earlier.end()) continue;
      Slot& slot = slots_[i];
      slot.attempts = it->second.attempts;
      if (!IsKeptOnResume(it->second.status)) continue;
      slot.kept = true;
      slot.result.status = it->second.status;
      slot.result.error = Status::Ok();
      if (it->second.output_json) slot.result.output = MakeJson(*it->second.output_json);
    }
    std::vector<int> ready;
    for (size_t i = 0; i < slots_.size(); ++i) {
      Slot& slot = slots_[i];
      if (slot.kept) continue;
      int pending = 0;
      for (int d : slot.deps) pending += slots_[d].kept ? 0 : 1;
      slot.pending.store(pending, std::memory_order_relaxed);
      int consumers = 0;
      for (int j : slot.dependents) consumers += slots_[j].kept ? 0 : 1;
      slot.consumers.store(consumers, std::memory_order_relaxed);
      if (pending == 0) ready.push_back(static_cast<int>(i));
    }
    return ready;
  }

  int kept_count() const {
    int n = 0;
    for (const auto& s : slots_) n += s.kept ? 1 : 0;
    return n;
  }

  // Runs on a TBB worker: decides whether node `i` runs or is cancelled, and
  // starts it. `launch` re-enters the graph for dependents that become ready.
  void Launch(int i, tbb::flow::graph& graph, const std::function<void(int)>& launch,
              const std::function<void(std::function<void()>)>& post) {
    Slot& slot = slots_[i];
    const NodeSpec& spec = wf_.nodes[i];
    // Pairs with the dependencies' release decrements, so their results are
    // visible here whichever thread TBB picked (and visible to TSan, which
    // cannot see TBB's own task hand-off).
    (void)slot.pending.load(std::memory_order_acquire);
    auto ctx = std::make_unique<NodeContext>();
    std::string cancel_reason;
    for (int d : slot.deps) {
      const NodeResult& dep = slots_[d].result;
      const std::string& name = wf_.nodes[d].name;
      switch (dep.status) {
        case NodeStatus::kSucceeded:
        case NodeStatus::kFallback:
          ctx->deps.emplace_back(name, dep.output);
          break;
        case NodeStatus::kSkipped:
          ctx->skipped.push_back(name);
          break;
        case NodeStatus::kFailed:
          if (wf_.nodes[d].optional) {
            ctx->failed.push_back(name);
          } else if (cancel_reason.empty()) {
            cancel_reason = "dependency '" + name + "' failed";
          }
          break;
        default:
          if (cancel_reason.empty()) cancel_reason = "dependency '" + name + "' was cancelled";
          break;
      }
    }
    if (!cancel_reason.empty()) {
      ctx.reset();
      slot.started_wall = 0;
      Complete(i, NodeResult{NodeStatus::kCancelled, nullptr,
                             Status::Error(ErrorKind::kCancelled, cancel_reason)},
               launch);
      return;
    }
    ctx->run_id = run_id_;
    ctx->workflow = wf_.name;
    ctx->node = spec.name;
    ctx->attempt = ++slot.attempts;
    ctx->params = params_;
    ctx->cancel = &slot.cancel;
    ctx->post = post;
    slot.started_wall = clock_->WallNow();
    slot.started_mono = clock_->Now();
    if (store_) {
      NodeRecord rec;
      rec.run_id = run_id_;
      rec.node = spec.name;
      rec.status = NodeStatus::kRunning;
      rec.attempts = slot.attempts;
      rec.started_at = slot.started_wall;
      store_->SaveNode(std::move(rec));
      store_->AppendEvent({run_id_, 0, slot.started_wall, spec.name, "node_started",
                           EventData().Add("attempt", slot.attempts).Done()});
    }
    if (observer_) observer_->OnNodeStarted(spec.name, slot.attempts);
    slot.ctx = std::move(ctx);
    graph.reserve_wait();
    auto done = [this, i, &graph, launch](NodeResult result) {
      Complete(i, std::move(result), launch);
      graph.release_wait();  // last: the run may end as soon as this returns
    };
    try {
      spec.body->Start(*slots_[i].ctx, std::move(done));
    } catch (const std::exception& e) {
      // Start promised not to throw; if it did, `done` was not called.
      Complete(i, NodeResult::Failure(Status::Error(ErrorKind::kError, e.what())), launch);
      graph.release_wait();
    }
  }

  RunOutcome Outcome() {
    RunOutcome out;
    bool degraded = false, failed = false;
    for (size_t i = 0; i < slots_.size(); ++i) {
      Slot& slot = slots_[i];
      out.attempts.push_back(slot.attempts);
      NodeStatus st = slot.result.status;
      if (st == NodeStatus::kFailed || st == NodeStatus::kCancelled) {
        if (wf_.nodes[i].optional) {
          degraded = true;
        } else {
          failed = true;
        }
      }
      out.results.push_back(std::move(slot.result));
    }
    out.status = failed ? RunStatus::kFailed : degraded ? RunStatus::kDegraded : RunStatus::kSucceeded;
    {
      std::lock_guard<std::mutex> lock(error_mu_);
      out.error = first_error_;
    }
    return out;
  }

 private:
  struct Slot {
    std::vector<int> deps;
    std::vector<int> dependents;
    std::atomic<int> pending{0};    // unfinished dependencies
    std::atomic<int> consumers{0};  // dependents that have not finished yet
    bool kept = false;              // restored from an earlier attempt
    int attempts = 0;
    double started_wall = 0, started_mono = 0;
    NodeResult result{NodeStatus::kPending, nullptr, Status::Ok()};
    std::unique_ptr<NodeContext> ctx;  // alive while an attempt is out
    CancelToken cancel;
  };

  void Complete(int i, NodeResult result, const std::function<void(int)>& launch) {
    Slot& slot = slots_[i];
    const NodeSpec& spec = wf_.nodes[i];
    slot.ctx.reset();
    if (result.status == NodeStatus::kPending || result.status == NodeStatus::kRunning) {
      result = NodeResult::Failure(
          Status::Error(ErrorKind::kError, "node body reported an unfinished status"));
    }
    double seconds = slot.started_wall ? clock_->Now() - slot.started_mono : 0.0;
    if (!result.error.ok() && !spec.optional && result.status != NodeStatus::kCancelled) {
      std::lock_guard<std::mutex> lock(error_mu_);
      if (first_error_.empty()) first_error_ = spec.name + ": " + result.error.ToString();
    }
    if (store_) {
      double now = clock_->WallNow();
      NodeRecord rec;
      rec.run_id = run_id_;
      rec.node = spec.name;
      rec.status = result.status;
      rec.attempts = slot.attempts;
      if (result.output) rec.output_json = *result.output;
      rec.error_kind = result.error.kind();
      rec.error_message = result.error.message();
      rec.started_at = slot.started_wall;
      rec.finished_at = now;
      store_->SaveNode(std::move(rec));
      EventData data;
      data.Add("seconds", seconds);
      if (!result.error.ok()) {
        data.Add("kind", std::string(ErrorKindName(result.error.kind())))
            .Add("message", result.error.message());
      }
      store_->AppendEvent(
          {run_id_, 0, now, spec.name, std::string(EventKindFor(result.status)), data.Done()});
    }
    if (observer_) observer_->OnNodeFinished(spec.name, result, seconds);
    slot.result = std::move(result);
    // This node has consumed its dependencies' outputs.
    for (int d : slot.deps) ReleaseConsumer(d);
    // Sinks keep their output for the outcome; a node whose dependents were
    // all kept from an earlier attempt has nobody left to feed.
    if (!slot.dependents.empty() && slot.consumers.load(std::memory_order_acquire) == 0) {
      slot.result.output.reset();
    }
    for (int j : slot.dependents) {
      if (slots_[j].pending.fetch_sub(1, std::memory_order_acq_rel) == 1) launch(j);
    }
  }

  void ReleaseConsumer(int d) {
    Slot& dep = slots_[d];
    if (dep.kept) return;
    if (dep.consumers.fetch_sub(1, std::memory_order_acq_rel) == 1) dep.result.output.reset();
  }

  const WorkflowSpec& wf_;
  const std::string run_id_;
  const JsonText params_;
  Clock* clock_;
  Store* store_;
  Observer* observer_;
  std::vector<Slot> slots_;  // see the class comment for who may touch a slot
  std::mutex error_mu_;
  std::string first_error_;  // guarded by error_mu_
};

}  // namespace

Executor::Executor(Clock* clock, Store* store, Observer* observer)
    : clock_(clock), store_(store), observer_(observer) {}

RunOutcome Executor::Run(const WorkflowSpec& workflow, const std::string& run_id, JsonText params,
                         const std::unordered_map<std::string, NodeRecord>& earlier,
                         const ExecutorOptions& options) {
  RunState state(workflow, run_id, std::move(params), clock_, store_, observer_);
  std::vector<int> ready = state.Prepare(earlier);
  if (observer_) {
    observer_->OnRunStarted(RunInfo{run_id, workflow.name,
                                    static_cast<int>(workflow.nodes.size()), state.kept_count()});
  }
  int workers = options.workers > 0 ? options.workers : tbb::info::default_concurrency();
  // Lets --workers exceed the core count; TBB caps its pool at the cores otherwise.
  std::unique_ptr<tbb::global_control> allow;
  if (workers > tbb::info::default_concurrency()) {
    allow = std::make_unique<tbb::global_control>(
        tbb::global_control::max_allowed_parallelism, static_cast<size_t>(workers));
  }
  tbb::task_arena arena(workers);
  arena.execute([&] {
    tbb::flow::graph graph;
    std::function<void(int)> launch;
    std::function<void(std::function<void()>)> post = [&arena, &graph](std::function<void()> fn) {
      graph.reserve_wait();
      // noexcept: a continuation that throws could never complete its node, so
      // terminating loudly beats hanging the run.
      arena.enqueue([fn = std::move(fn), &graph]() noexcept {
        fn();
        graph.release_wait();
      });
    };
    // One dispatcher node launches every DAG node; dependency counting is in
    // RunState, which also handles joins, skips and cancellation.
    tbb::flow::function_node<int> dispatch(graph, tbb::flow::unlimited, [&](int i) {
      state.Launch(i, graph, launch, post);
    });
    launch = [&dispatch](int i) { dispatch.try_put(i); };
    for (int i : ready) dispatch.try_put(i);
    graph.wait_for_all();
  });
  RunOutcome outcome = state.Outcome();
  if (observer_) observer_->OnRunFinished(outcome.status);
  return outcome;
}

}  // namespace keel
