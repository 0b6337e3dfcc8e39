// Checkpoints (NodeContext::checkpoint / journal), LLM spending
// (NodeContext::spend) and run budgets, through the executor with in-memory
// bodies and store.
#include <doctest/doctest.h>

#include <atomic>
#include <future>
#include <thread>

#include "engine/executor.h"
#include "engine/fake_clock.h"
#include "engine/mutex.h"
#include "engine/run_history.h"
#include "tests/fakes/memory_store.h"
#include "tests/fakes/node_spec.h"

namespace keel {
namespace {

using testing::MemoryStore;
using testing::Node;

// Spends `tokens` per call and succeeds, or, with `held`, keeps its attempt
// open until cancelled (so a budget stop can be seen cancelling it).
class SpendingBody : public NodeBody {
 public:
  SpendingBody(int64_t tokens, bool held) : tokens_(tokens), held_(held) {}
  void Start(const NodeContext& ctx, NodeCompletion done) override {
    calls.fetch_add(1);
    if (held_) {
      auto shared = std::make_shared<NodeCompletion>(std::move(done));
      ctx.cancel->Subscribe([shared] {
        (*shared)(NodeResult{NodeStatus::kCancelled, nullptr,
                             Status::Error(ErrorKind::kCancelled, "cancelled")});
      });
      return;
    }
    Usage usage;
    usage.prompt_tokens = tokens_;
    usage.completion_tokens = 0;
    usage.cost = 0.5;
    bool within = ctx.spend(usage, "{\"prompt_tokens\":" + std::to_string(tokens_) +
                                       ",\"completion_tokens\":0,\"cost\":0.5}");
    if (!within) {
      done(NodeResult{NodeStatus::kCancelled, nullptr,
                      Status::Error(ErrorKind::kCancelled, "over budget")});
      return;
    }
    done(NodeResult::Success(MakeJson("1")));
  }
  std::atomic<int> calls{0};

 private:
  const int64_t tokens_;
  const bool held_;
};

// Checkpoints one step per attempt and fails until it has seen `steps` of
// them in its journal, then returns how many it saw.
class JournalBody : public NodeBody {
 public:
  explicit JournalBody(size_t steps) : steps_(steps) {}
  void Start(const NodeContext& ctx, NodeCompletion done) override {
    {
      MutexLock lock(&mu_);
      seen_.push_back(ctx.journal.size());
    }
    if (ctx.journal.size() >= steps_) {
      return done(NodeResult::Success(MakeJson(std::to_string(ctx.journal.size()))));
    }
    ctx.checkpoint(MakeJson("{\"step\":" + std::to_string(ctx.journal.size()) + "}"));
    done(NodeResult::Failure(Status::Error(ErrorKind::kTransient, "not yet")));
  }
  // The journal sizes it saw, per attempt.
  std::vector<size_t> seen() {
    MutexLock lock(&mu_);
    return seen_;
  }

 private:
  const size_t steps_;
  Mutex mu_;
  std::vector<size_t> seen_ GUARDED_BY(mu_);
};

struct Fixture {
  FakeClock clock;
  MemoryStore store;
  Executor executor{&clock, &store, nullptr};

  RunOutcome Run(const WorkflowSpec& wf, Budget budget = {}, const RunHistory& history = {},
                 const std::unordered_map<std::string, NodeRecord>& earlier = {}) {
    ExecutorOptions opts;
    opts.workers = 2;
    opts.budget = budget;
    // Runs on another thread while this one fires the (backoff) timers.
    auto fut = std::async(std::launch::async, [&] {
      return executor.Run(wf, "r1", MakeJson("{}"), earlier, opts, history);
    });
    while (fut.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
      if (!clock.RunNext()) std::this_thread::yield();
    }
    REQUIRE(store.Flush().ok());
    return fut.get();
  }
  std::vector<EventRecord> Events(const std::string& kind) {
    std::vector<EventRecord> found;
    auto events = store.GetEvents("r1");
    for (auto& e : *events) {
      if (e.kind == kind) found.push_back(e);
    }
    return found;
  }
};

}  // namespace

TEST_CASE("spending is recorded as llm_call events and summed back" * doctest::timeout(30)) {
  Fixture f;
  WorkflowSpec wf;
  wf.name = "w";
  wf.nodes = {Node("a", {}, std::make_shared<SpendingBody>(100, false)),
              Node("b", {"a"}, std::make_shared<SpendingBody>(50, false))};
  RunOutcome out = f.Run(wf);
  CHECK(out.status == RunStatus::kSucceeded);
  auto calls = f.Events(kUsageEventKind);
  REQUIRE(calls.size() == 2);
  CHECK(calls[0].node == "a");
  RunHistory history = ReadRunHistory(*f.store.GetEvents("r1"));
  CHECK(history.spent.prompt_tokens == 150);
  CHECK(history.spent.cost == doctest::Approx(1.0));
}

TEST_CASE("a token budget stops the run: running nodes cancelled, later ones never start" *
          doctest::timeout(30)) {
  Fixture f;
  WorkflowSpec wf;
  wf.name = "w";
  auto held = std::make_shared<SpendingBody>(0, true);
  auto spender = std::make_shared<SpendingBody>(600, false);
  auto later = std::make_shared<SpendingBody>(1, false);
  wf.nodes = {Node("slow", {}, held), Node("big", {}, spender), Node("after_big", {"big"}, later)};
  // "big" spends 600 of 500: the run stops.
  RunOutcome out = f.Run(wf, Budget{500, 0});
  CHECK(out.status == RunStatus::kFailed);
  CHECK(out.error.find("token budget exceeded") != std::string::npos);
  CHECK(out.error.find("600") != std::string::npos);
  CHECK(later->calls.load() == 0);
  CHECK(out.results[wf.Find("slow")].status == NodeStatus::kCancelled);
  CHECK(out.results[wf.Find("after_big")].status == NodeStatus::kCancelled);
  CHECK(f.Events("budget_exceeded").size() == 1);
}

TEST_CASE("the workflow's own budget applies, and spending before a resume counts" *
          doctest::timeout(30)) {
  Fixture f;
  WorkflowSpec wf;
  wf.name = "w";
  wf.budget.max_cost = 1.0;
  auto a = std::make_shared<SpendingBody>(1, false);
  wf.nodes = {Node("a", {}, a)};
  RunHistory history;
  history.spent.cost = 0.75;  // earlier attempt of the run; 0.75 + 0.5 > 1.0
  RunOutcome out = f.Run(wf, Budget{}, history);
  CHECK(out.status == RunStatus::kFailed);
  CHECK(out.error.find("cost budget exceeded") != std::string::npos);
  // Without the earlier spending it fits.
  Fixture g;
  CHECK(g.Run(wf).status == RunStatus::kSucceeded);
}

TEST_CASE("a cost budget message shows spent and limit apart when they are close" *
          doctest::timeout(30)) {
  Fixture f;
  WorkflowSpec wf;
  wf.name = "w";
  wf.budget.max_cost = 0.49999;  // one call costs 0.5
  wf.nodes = {Node("a", {}, std::make_shared<SpendingBody>(1, false))};
  RunOutcome out = f.Run(wf);
  CHECK(out.status == RunStatus::kFailed);
  CHECK(out.error.find("cost budget exceeded: 0.5000 spent, limit 0.49999") != std::string::npos);
}

TEST_CASE("checkpoints reach later attempts and a resumed run" * doctest::timeout(30)) {
  Fixture f;
  WorkflowSpec wf;
  wf.name = "w";
  auto body = std::make_shared<JournalBody>(2);
  NodeSpec n = Node("agent", {}, body);
  n.policy.retry.attempts = 5;
  n.policy.retry.base = 0.001;
  wf.nodes = {n};
  RunOutcome out = f.Run(wf);
  CHECK(out.status == RunStatus::kSucceeded);
  CHECK(body->seen() == std::vector<size_t>{0, 1, 2});
  CHECK(f.Events("checkpoint").size() == 2);

  // A resumed run starts from what the events hold.
  RunHistory history = ReadRunHistory(*f.store.GetEvents("r1"));
  REQUIRE(history.journals["agent"].size() == 2);
  Fixture g;
  auto resumed = std::make_shared<JournalBody>(2);
  NodeSpec m = Node("agent", {}, resumed);
  wf.nodes = {m};
  CHECK(g.Run(wf, Budget{}, history).status == RunStatus::kSucceeded);
  CHECK(resumed->seen() == std::vector<size_t>{2});
}

}  // namespace keel
