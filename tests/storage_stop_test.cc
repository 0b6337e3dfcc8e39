// The executor and the store's health: a run stops starting nodes and
// cancels what is in flight once the store gives up on its storage, and
// Executor::Stop stops every run in progress. In-memory bodies and store.
#include <doctest/doctest.h>

#include <atomic>
#include <future>
#include <memory>
#include <thread>

#include "engine/executor.h"
#include "engine/fake_clock.h"
#include "tests/fakes/memory_store.h"
#include "tests/fakes/node_spec.h"

namespace keel {
namespace {

using testing::MemoryStore;
using testing::Node;

// Succeeds at once, after running `effect`; or, with `held`, keeps its
// attempt open until cancelled.
class Body : public NodeBody {
 public:
  Body(std::function<void()> effect, bool held) : effect_(std::move(effect)), held_(held) {}
  void Start(const NodeContext& ctx, NodeCompletion done) override {
    calls.fetch_add(1);
    if (effect_) effect_();
    if (held_) {
      auto shared = std::make_shared<NodeCompletion>(std::move(done));
      started.store(true);
      ctx.cancel->Subscribe([shared] {
        (*shared)(NodeResult{NodeStatus::kCancelled, nullptr,
                             Status::Error(ErrorKind::kCancelled, "cancelled")});
      });
      return;
    }
    done(NodeResult::Success(MakeJson("1")));
  }
  std::atomic<int> calls{0};
  std::atomic<bool> started{false};

 private:
  std::function<void()> effect_;
  const bool held_;
};

RunOutcome RunOn(Executor& executor, const WorkflowSpec& wf) {
  ExecutorOptions options;
  options.workers = 2;
  return executor.Run(wf, "r1", MakeJson("{}"), {}, options);
}

TEST_CASE("a run stops starting nodes once the store gives up on its storage" *
          doctest::timeout(30)) {
  FakeClock clock;
  MemoryStore store;
  Executor executor(&clock, &store, nullptr);
  const Status full = Status::Error(ErrorKind::kTransient, "keel.db: database or disk is full");
  auto first = std::make_shared<Body>(nullptr, false);
  auto second = std::make_shared<Body>([&] { store.SetWriteHealth(full); }, false);
  auto third = std::make_shared<Body>(nullptr, false);
  WorkflowSpec wf;
  wf.name = "chain";
  wf.nodes = {Node("a", {}, first), Node("b", {"a"}, second), Node("c", {"b"}, third)};
  RunOutcome outcome = RunOn(executor, wf);
  CHECK(outcome.status == RunStatus::kFailed);
  CHECK(outcome.error.find("cannot save checkpoints") != std::string::npos);
  CHECK(outcome.error.find("disk is full") != std::string::npos);
  CHECK(first->calls == 1);
  CHECK(second->calls == 1);
  CHECK(third->calls == 0);
  CHECK(outcome.results[2].status == NodeStatus::kCancelled);
}

TEST_CASE("Executor::Stop cancels what is in flight and starts nothing more" *
          doctest::timeout(30)) {
  FakeClock clock;
  MemoryStore store;
  Executor executor(&clock, &store, nullptr);
  auto held = std::make_shared<Body>(nullptr, true);
  auto after = std::make_shared<Body>(nullptr, false);
  WorkflowSpec wf;
  wf.name = "held";
  wf.nodes = {Node("slow", {}, held), Node("next", {"slow"}, after)};
  auto run = std::async(std::launch::async, [&] { return RunOn(executor, wf); });
  while (!held->started.load()) std::this_thread::yield();
  executor.Stop("cannot save checkpoints: keel.db: disk I/O error");
  RunOutcome outcome = run.get();
  CHECK(outcome.status == RunStatus::kFailed);
  CHECK(outcome.error == "cannot save checkpoints: keel.db: disk I/O error");
  CHECK(outcome.results[0].status == NodeStatus::kCancelled);
  CHECK(outcome.results[1].status == NodeStatus::kCancelled);
  CHECK(after->calls == 0);
  // A later run on the same executor is not affected.
  auto fresh = std::make_shared<Body>(nullptr, false);
  WorkflowSpec again;
  again.name = "again";
  again.nodes = {Node("one", {}, fresh)};
  CHECK(RunOn(executor, again).status == RunStatus::kSucceeded);
}

}  // namespace
}  // namespace keel
