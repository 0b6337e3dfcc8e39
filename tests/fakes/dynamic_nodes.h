#pragma once
// What the tests of keel.map, keel.call and keel.loop in the engine
// (dynamic_map_test, dynamic_loop_test) share: functions answering from
// C++, item and sub-workflow bodies that track what ran, and the dynamic
// node specs. Bodies are called from the executor's workers; the rest on
// the test thread.

#include <algorithm>
#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/dynamic_node.h"
#include "engine/fake_clock.h"
#include "engine/mutex.h"
#include "tests/fakes/executor_fixture.h"

namespace keel::testing {

using ValueFn = std::function<NodeResult(const NodeContext&, const JsonText&)>;

// A NodeFunction answering synchronously from a C++ function.
class FnFunction : public NodeFunction {
 public:
  explicit FnFunction(ValueFn fn) : fn_(std::move(fn)) {}
  void Call(const NodeContext& ctx, JsonText arg, NodeCompletion done) override {
    done(fn_(ctx, arg));
  }

 private:
  ValueFn fn_;
};

inline std::shared_ptr<NodeFunction> Value(const std::string& json) {
  return std::make_shared<FnFunction>(
      [json](const NodeContext&, const JsonText&) { return NodeResult::Success(MakeJson(json)); });
}

// An item body that takes one second of fake time, tracking how many items
// are in flight and which started; `fail` says which indexes fail.
class ItemBody : public NodeBody {
 public:
  ItemBody(FakeClock* clock, std::function<Status(int index, int attempt)> fail = nullptr)
      : clock_(clock), fail_(std::move(fail)) {}
  void Start(const NodeContext& ctx, NodeCompletion done) override {
    int now = running.fetch_add(1) + 1;
    int seen = peak.load();
    while (now > seen && !peak.compare_exchange_weak(seen, now)) {
    }
    int index = ctx.index;
    int attempt = ctx.attempt;
    std::string item = ctx.item ? *ctx.item : "null";
    {
      MutexLock lock(&mu);
      started.push_back(index);
      // Lazy creation: item k starts only once all but `window` earlier ones finished.
      max_ahead = std::max(max_ahead, index - finished_count);
    }
    clock_->After(1.0, [this, index, attempt, item, done = std::move(done)] {
      running.fetch_sub(1);
      {
        MutexLock lock(&mu);
        ++finished_count;
      }
      Status failure = fail_ ? fail_(index, attempt) : Status::Ok();
      if (!failure.ok()) return done(NodeResult::Failure(failure));
      done(NodeResult::Success(
          MakeJson("{\"i\":" + std::to_string(index) + ",\"item\":" + item + "}")));
    });
  }
  std::atomic<int> running{0}, peak{0};
  Mutex mu;
  std::vector<int> started GUARDED_BY(mu);
  int finished_count GUARDED_BY(mu) = 0;
  int max_ahead GUARDED_BY(mu) = 0;

 private:
  FakeClock* clock_;
  std::function<Status(int, int)> fail_;
};

// A sub-workflow body: {"iteration": params.iteration, "x": params.x}.
class ParamsBody : public NodeBody {
 public:
  void Start(const NodeContext& ctx, NodeCompletion done) override {
    calls.fetch_add(1);
    {
      MutexLock lock(&mu);
      seen.push_back(*ctx.params);
    }
    done(NodeResult::Success(ctx.params));
  }
  std::atomic<int> calls{0};
  Mutex mu;
  std::vector<std::string> seen GUARDED_BY(mu);
};


inline NodeSpec MapNode(std::string name, std::shared_ptr<NodeFunction> over,
                 std::shared_ptr<NodeBody> item, int max_concurrency = 0, double tolerate = 0,
                 int retries = 1) {
  auto dyn = std::make_shared<DynamicNode>();
  dyn->kind = DynamicNode::Kind::kMap;
  dyn->start = std::move(over);
  dyn->max_concurrency = max_concurrency;
  dyn->tolerate = tolerate;
  auto wf = std::make_shared<WorkflowSpec>();
  wf->name = name;
  NodeSpec inner = Node("", std::move(item));
  inner.policy.retry.attempts = retries;
  inner.policy.retry.base = 0.5;
  wf->nodes.push_back(std::move(inner));
  dyn->item = std::move(wf);
  NodeSpec n;
  n.name = std::move(name);
  n.kind = "map";
  n.where = "test.lua:7";
  n.dynamic = std::move(dyn);
  return n;
}

inline NodeSpec SubNode(std::string name, DynamicNode::Kind kind, std::string workflow,
                 std::shared_ptr<NodeFunction> start, std::shared_ptr<NodeFunction> done_when,
                 int max_iterations = 0) {
  auto dyn = std::make_shared<DynamicNode>();
  dyn->kind = kind;
  dyn->start = std::move(start);
  dyn->done_when = std::move(done_when);
  dyn->workflow = std::move(workflow);
  dyn->max_iterations = max_iterations;
  NodeSpec n;
  n.name = std::move(name);
  n.where = "test.lua:9";
  n.dynamic = std::move(dyn);
  return n;
}

inline std::string Range(int n) {
  std::string out = "[";
  for (int i = 1; i <= n; ++i) out += (i > 1 ? "," : "") + std::to_string(i * 10);
  return out + "]";
}

}  // namespace keel::testing
