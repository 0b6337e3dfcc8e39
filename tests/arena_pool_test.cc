// ArenaPool (engine/arena_pool.h): arenas are lent one run at a time and
// reused, and executions on many threads at once, each in a lent arena,
// finish with continuations posted from other threads, as a `keel worker`
// runs its nodes.

#include "engine/arena_pool.h"

#include <doctest/doctest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "engine/executor.h"
#include "engine/fake_clock.h"
#include "tests/fakes/memory_store.h"
#include "tests/fakes/node_spec.h"

namespace keel {
namespace {

TEST_CASE("an arena given back is lent again; two lent at once are two") {
  ArenaPool pool(1);
  tbb::task_arena* first;
  {
    ArenaPool::Lease a = pool.Acquire();
    first = &a.arena();
    ArenaPool::Lease b = pool.Acquire();
    CHECK(&b.arena() != first);
    CHECK(a.arena().max_concurrency() == 1);
  }
  ArenaPool::Lease again = pool.Acquire();
  ArenaPool::Lease other = pool.Acquire();
  // Both came back; no third was made.
  CHECK((&again.arena() == first || &other.arena() == first));
}

// Completes on a thread of its own, through ctx.post, as a timer or an
// I/O completion does.
class PostedBody : public NodeBody {
 public:
  void Start(const NodeContext& ctx, NodeCompletion done) override {
    auto post = ctx.post;
    std::thread([post, done = std::move(done)]() mutable {
      post([done = std::move(done)] { done(NodeResult::Success(MakeJson("1"))); });
    }).detach();
  }
};

TEST_CASE("runs on many threads in pooled arenas all finish" * doctest::timeout(120)) {
  ArenaPool pool(1);
  FakeClock clock;
  WorkflowSpec wf;
  wf.name = "posted";
  wf.nodes = {testing::Node("a", {}, std::make_shared<PostedBody>()),
              testing::Node("b", {"a"}, std::make_shared<PostedBody>())};
  std::atomic<int> succeeded{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 150; ++i) {
        testing::MemoryStore store;
        Executor executor(&clock, &store, nullptr);
        ExecutorOptions options;
        options.arenas = &pool;
        RunOutcome out = executor.Run(wf, "r" + std::to_string(t) + "-" + std::to_string(i),
                                      MakeJson("{}"), {}, options);
        if (out.status == RunStatus::kSucceeded) succeeded.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(succeeded.load() == 8 * 150);
}

}  // namespace
}  // namespace keel
