// CallerLoop (engine/caller_loop.h): the one thread of a one-slot arena
// sleeps while its run waits, and wakes for posted closures and the last
// released reservation; and runs with retries, timeouts and joins finish in
// such arenas as they do in arenas of their own, with timers firing on
// another thread (a best-effort join's timer launches its node from there).

#include "engine/caller_loop.h"

#include <doctest/doctest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "tests/fakes/executor_fixture.h"
#include "tests/fakes/node_spec.h"

namespace keel {
namespace {

using testing::ConstBody;
using testing::Fixture;
using testing::HangingBody;
using testing::Node;
using testing::One;
using testing::ScriptedBody;
using testing::Transient;

TEST_CASE("with nothing reserved or posted the loop returns after one pass") {
  CallerLoop loop;
  int passes = 0;
  loop.Run([&] { ++passes; });
  CHECK(passes == 1);
  CHECK(loop.OnOwner());
}

TEST_CASE("closures posted from another thread run on the owner, then the last release "
          "ends the loop" * doctest::timeout(30)) {
  CallerLoop loop;
  loop.Reserve();
  std::vector<int> ran;  // owner thread only
  std::atomic<bool> foreign_owner{true};
  std::thread other([&] {
    foreign_owner = loop.OnOwner();
    loop.Post([&] {
      CHECK(loop.OnOwner());
      ran.push_back(1);
      // A closure may post another; it runs in a later pass.
      loop.Post([&] {
        ran.push_back(2);
        loop.Release();
      });
    });
  });
  int passes = 0;
  loop.Run([&] { ++passes; });
  other.join();
  CHECK_FALSE(foreign_owner.load());
  CHECK(ran == std::vector<int>{1, 2});
  CHECK(passes == 3);
}

TEST_CASE("a release from another thread, with nothing posted, ends the loop" *
          doctest::timeout(30)) {
  CallerLoop loop;
  loop.Reserve();
  loop.Reserve();
  std::thread other([&] {
    loop.Release();
    loop.Release();
  });
  loop.Run([] {});
  other.join();
}

TEST_CASE("timeouts and joins in a one-slot arena, timers firing on another thread" *
          doctest::timeout(60)) {
  ArenaPool pool(1);
  double elapsed = 0;

  Fixture timed;
  timed.arenas = &pool;
  NodeSpec slow = Node("slow", std::make_shared<HangingBody>());
  slow.policy.timeout = 2;
  RunOutcome out = timed.Run(One(slow), &elapsed);
  CHECK(out.status == RunStatus::kFailed);
  CHECK(elapsed == doctest::Approx(2.0));

  // The join's timer fires on the test's thread and launches b from there.
  Fixture joined;
  joined.arenas = &pool;
  WorkflowSpec be;
  be.name = "be";
  be.nodes = {Node("a", std::make_shared<ConstBody>("1")),
              Node("hang", std::make_shared<HangingBody>())};
  NodeSpec b = Node("b", std::make_shared<ConstBody>("0"), {"a", "hang"});
  b.policy.join.kind = JoinPolicy::Kind::kBestEffort;
  b.policy.join.best_effort = 5;
  be.nodes.push_back(b);
  out = joined.Run(be, &elapsed);
  CHECK(out.status == RunStatus::kSucceeded);
  CHECK(elapsed == doctest::Approx(5.0));
  CHECK(out.results[1].status == NodeStatus::kCancelled);
  CHECK(out.results[2].output->find("\"failed\":[\"hang\"]") != std::string::npos);
}

TEST_CASE("many runs at once, each in a lent one-slot arena, all finish" * doctest::timeout(120)) {
  ArenaPool pool(1);
  std::atomic<int> succeeded{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20; ++i) {
        Fixture f;
        f.arenas = &pool;
        auto flaky = std::make_shared<ScriptedBody>(std::vector<Status>{Transient()});
        NodeSpec first = Node("first", flaky);
        first.policy.retry.attempts = 2;
        first.policy.retry.base = 1;
        WorkflowSpec wf;
        wf.name = "chain";
        wf.nodes = {first, Node("second", std::make_shared<ConstBody>("2"), {"first"})};
        if (f.Run(wf).status == RunStatus::kSucceeded) succeeded.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(succeeded.load() == 6 * 20);
}

}  // namespace
}  // namespace keel
