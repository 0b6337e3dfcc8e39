#pragma once
// The fixture of the executor tests on a fake clock (policy_executor_test,
// policy_join_test, dynamic_map_test, dynamic_loop_test): scripted node
// bodies and an executor whose Run fires timers as they come due. The test
// thread only; bodies are called from the executor's workers.

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "engine/arena_pool.h"
#include "engine/executor.h"
#include "engine/fake_clock.h"
#include "tests/fakes/memory_store.h"

namespace keel::testing {

// Fails with the given statuses in turn, then succeeds with "ok".
class ScriptedBody : public NodeBody {
 public:
  explicit ScriptedBody(std::vector<Status> failures) : failures_(std::move(failures)) {}
  void Start(const NodeContext& ctx, NodeCompletion done) override {
    int n = calls.fetch_add(1);
    if (n < static_cast<int>(failures_.size())) {
      done(NodeResult::Failure(failures_[n]));
    } else {
      done(NodeResult::Success(MakeJson("\"ok\"")));
    }
  }
  std::atomic<int> calls{0};

 private:
  std::vector<Status> failures_;
};

// Never finishes on its own: completes as cancelled when its token fires.
class HangingBody : public NodeBody {
 public:
  void Start(const NodeContext& ctx, NodeCompletion done) override {
    int now = running.fetch_add(1) + 1;
    int seen = peak.load();
    while (now > seen && !peak.compare_exchange_weak(seen, now)) {
    }
    calls.fetch_add(1);
    auto shared = std::make_shared<NodeCompletion>(std::move(done));
    ctx.cancel->Subscribe([this, shared] {
      running.fetch_sub(1);
      (*shared)(NodeResult{NodeStatus::kCancelled, nullptr,
                           Status::Error(ErrorKind::kCancelled, "stopped")});
    });
  }
  std::atomic<int> calls{0}, running{0}, peak{0};
};

class ConstBody : public NodeBody {
 public:
  explicit ConstBody(std::string json) : json_(std::move(json)) {}
  void Start(const NodeContext& ctx, NodeCompletion done) override {
    std::string deps = "{";
    for (auto& [name, out] : ctx.deps) deps += (deps.size() > 1 ? ",\"" : "\"") + name + "\":" + *out;
    deps += "}";
    std::string failed = "[";
    for (auto& f : ctx.failed) failed += (failed.size() > 1 ? ",\"" : "\"") + f + "\"";
    failed += "]";
    std::string failure = ctx.failure ? *ctx.failure : "null";
    done(NodeResult::Success(MakeJson("{\"v\":" + json_ + ",\"deps\":" + deps +
                                      ",\"failed\":" + failed + ",\"failure\":" + failure +
                                      "}")));
  }

 private:
  std::string json_;
};

inline Status Transient() { return Status::Error(ErrorKind::kTransient, "flaky"); }
inline Status Permanent() { return Status::Error(ErrorKind::kPermanent, "bad request"); }

inline NodeSpec Node(std::string name, std::shared_ptr<NodeBody> body, std::vector<std::string> after = {}) {
  NodeSpec n;
  n.name = std::move(name);
  n.body = std::move(body);
  n.after = std::move(after);
  n.policy.retry.attempts = 1;
  return n;
}

struct Fixture {
  FakeClock clock{0.0};
  MemoryStore store;
  Executor executor{&clock, &store, nullptr};
  std::vector<WorkflowSpec> library;
  // While set and true, Run fires no timer: lets a test see work start
  // before fake time jumps past it.
  std::function<bool()> hold;
  // When set, runs go in arenas lent by this pool (as a worker's slots do)
  // instead of arenas of their own.
  ArenaPool* arenas = nullptr;

  // Runs on another thread while this one fires timers as they come due,
  // jumping the fake clock; returns the outcome and the fake time it took.
  RunOutcome Run(const WorkflowSpec& wf, double* elapsed = nullptr, int workers = 2,
                 int max_inflight = 0) {
    ExecutorOptions opts;
    opts.workers = workers;
    opts.max_inflight = max_inflight;
    return RunWith(wf, opts, {}, {}, elapsed);
  }
  // The same, as a resume: going on from `earlier` records and `history`.
  RunOutcome Run(const WorkflowSpec& wf, const std::unordered_map<std::string, NodeRecord>& earlier,
                 const RunHistory& history = {}) {
    ExecutorOptions opts;
    opts.workers = 2;
    return RunWith(wf, opts, earlier, history, nullptr);
  }
  // Run "r1"'s record of `node`, if any.
  std::optional<NodeRecord> Record(const std::string& node) {
    auto nodes = store.GetNodes("r1");
    for (auto& rec : *nodes) {
      if (rec.node == node) return rec;
    }
    return std::nullopt;
  }
  int CountEvents(const std::string& node, const std::string& kind) {
    int n = 0;
    auto events = store.GetEvents("r1");
    for (auto& e : *events) n += (e.node == node && e.kind == kind) ? 1 : 0;
    return n;
  }

 private:
  RunOutcome RunWith(const WorkflowSpec& wf, ExecutorOptions opts,
                     const std::unordered_map<std::string, NodeRecord>& earlier,
                     const RunHistory& history, double* elapsed) {
    opts.library = &library;
    opts.arenas = arenas;
    double start = clock.Now();
    auto fut = std::async(std::launch::async, [&] {
      return executor.Run(wf, "r1", MakeJson("{}"), earlier, opts, history);
    });
    while (fut.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
      if ((hold && hold()) || !clock.RunNext()) std::this_thread::yield();
    }
    if (elapsed) *elapsed = clock.Now() - start;
    REQUIRE(store.Flush().ok());
    return fut.get();
  }
};

// A workflow "wf" of node `n` alone.
inline WorkflowSpec One(NodeSpec n) {
  WorkflowSpec wf;
  wf.name = "wf";
  wf.nodes.push_back(std::move(n));
  return wf;
}

}  // namespace keel::testing
