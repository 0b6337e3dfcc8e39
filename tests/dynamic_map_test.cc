// keel.map in the engine, on a fake clock: items in flight bounded by
// max_concurrency and created lazily, empty lists, tolerated failures, item
// retries, resumes, the checkpointed list, and the store's backlog holding
// items back.
#include "engine/dynamic_node.h"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include "tests/fakes/dynamic_nodes.h"

namespace keel {
namespace {

using testing::Fixture;
using testing::FnFunction;
using testing::ItemBody;
using testing::MapNode;
using testing::One;
using testing::Range;
using testing::Value;

}  // namespace

TEST_CASE("map: max_concurrency bounds items in flight; items are created as others finish" *
          doctest::timeout(60)) {
  Fixture f;
  auto body = std::make_shared<ItemBody>(&f.clock);
  WorkflowSpec wf = One(MapNode("m", Value(Range(10)), body, 3));
  // Time moves on once the window is full (or all that is left has started).
  f.hold = [&] {
    MutexLock lock(&body->mu);
    int left = 10 - body->finished_count;
    return body->running.load() < std::min(3, left);
  };
  RunOutcome out = f.Run(wf);
  f.hold = nullptr;
  REQUIRE(out.status == RunStatus::kSucceeded);
  CHECK(body->peak.load() == 3);
  {
    MutexLock lock(&body->mu);
    CHECK(body->started.size() == 10);
    CHECK(body->max_ahead <= 3);
  }
  std::string expected = "[";
  for (int i = 1; i <= 10; ++i) {
    expected += (i > 1 ? "," : "") + std::string("{\"i\":") + std::to_string(i) +
                ",\"item\":" + std::to_string(i * 10) + "}";
  }
  CHECK(*out.results[0].output == expected + "]");
  auto rec = f.Record("m[4]");
  REQUIRE(rec);
  CHECK(rec->status == NodeStatus::kSucceeded);
  CHECK(*rec->output_json == "{\"i\":4,\"item\":40}");
}

TEST_CASE("map: without max_concurrency a long list is still created lazily" *
          doctest::timeout(120)) {
  Fixture f;
  auto body = std::make_shared<ItemBody>(&f.clock);
  WorkflowSpec wf = One(MapNode("m", Value(Range(3000)), body));
  RunOutcome out = f.Run(wf);
  REQUIRE(out.status == RunStatus::kSucceeded);
  CHECK(body->peak.load() <= kDefaultMapWindow);
  CHECK(body->peak.load() > 1);
  MutexLock lock(&body->mu);
  CHECK(body->started.size() == 3000);
  CHECK(body->max_ahead <= kDefaultMapWindow);
}

TEST_CASE("map: an empty list gives [] and runs no item" * doctest::timeout(30)) {
  Fixture f;
  auto body = std::make_shared<ItemBody>(&f.clock);
  for (const char* empty : {"[]", "{}"}) {
    RunOutcome out = f.Run(One(MapNode("m", Value(empty), body)));
    CHECK(out.status == RunStatus::kSucceeded);
    CHECK(*out.results[0].output == "[]");
  }
  CHECK(body->peak.load() == 0);
}

TEST_CASE("map: `over` returning something else than a list fails the map, naming it" *
          doctest::timeout(30)) {
  Fixture f;
  auto body = std::make_shared<ItemBody>(&f.clock);
  RunOutcome out = f.Run(One(MapNode("m", Value("{\"a\":1}"), body)));
  CHECK(out.status == RunStatus::kFailed);
  CHECK(out.results[0].error.kind() == ErrorKind::kPermanent);
  CHECK(out.error.find("test.lua:7: map 'm': `over` must return a list") != std::string::npos);
  CHECK(out.error.find("got an object") != std::string::npos);
}

TEST_CASE("map: tolerated failures leave null slots and a degraded run; more fail the map" *
          doctest::timeout(60)) {
  auto fail = [](int index, int) {
    return index == 3 || index == 7 ? Status::Error(ErrorKind::kPermanent, "bad item")
                                    : Status::Ok();
  };
  {
    Fixture f;
    auto body = std::make_shared<ItemBody>(&f.clock, fail);
    RunOutcome out = f.Run(One(MapNode("m", Value(Range(10)), body, 4, 0.2)));
    CHECK(out.status == RunStatus::kDegraded);
    REQUIRE(out.results[0].output);
    std::string output = *out.results[0].output;
    CHECK(output.find(",null,{\"i\":4") != std::string::npos);
    CHECK(f.Record("m[3]")->status == NodeStatus::kFailed);
    CHECK(f.Record("m")->status == NodeStatus::kSucceeded);
  }
  {
    Fixture f;
    auto body = std::make_shared<ItemBody>(&f.clock, fail);
    RunOutcome out = f.Run(One(MapNode("m", Value(Range(10)), body, 1, 0.1)));
    CHECK(out.status == RunStatus::kFailed);
    CHECK(out.results[0].error.kind() == ErrorKind::kPermanent);
    CHECK(out.error.find("m[3]: bad item") != std::string::npos);
    CHECK(out.error.find("2 of 10 items failed, 1 tolerated") != std::string::npos);
    // With one item at a time, nothing after the second failure started.
    MutexLock lock(&body->mu);
    CHECK(body->started.size() == 7);
  }
}

TEST_CASE("map: items are retried by their policy, each on its own" * doctest::timeout(60)) {
  Fixture f;
  auto body = std::make_shared<ItemBody>(&f.clock, [](int index, int attempt) {
    return index == 2 && attempt == 1 ? Status::Error(ErrorKind::kTransient, "flaky")
                                      : Status::Ok();
  });
  RunOutcome out = f.Run(One(MapNode("m", Value(Range(3)), body, 0, 0, /*retries=*/3)));
  CHECK(out.status == RunStatus::kSucceeded);
  CHECK(f.Record("m[2]")->attempts == 2);
  CHECK(f.Record("m[1]")->attempts == 1);
}

TEST_CASE("map: a resume runs only the items not recorded, and the output is complete" *
          doctest::timeout(60)) {
  Fixture f;
  auto body = std::make_shared<ItemBody>(&f.clock);
  WorkflowSpec wf = One(MapNode("m", Value(Range(8)), body, 2));
  std::unordered_map<std::string, NodeRecord> earlier;
  for (int k : {1, 2, 3, 5}) {
    NodeRecord rec;
    rec.run_id = "r1";
    rec.node = "m[" + std::to_string(k) + "]";
    rec.status = NodeStatus::kSucceeded;
    rec.attempts = 1;
    rec.output_json = "\"kept" + std::to_string(k) + "\"";
    earlier[rec.node] = rec;
  }
  NodeRecord failed;
  failed.run_id = "r1";
  failed.node = "m[4]";
  failed.status = NodeStatus::kFailed;
  failed.attempts = 1;
  earlier[failed.node] = failed;
  RunOutcome out = f.Run(wf, earlier);
  REQUIRE(out.status == RunStatus::kSucceeded);
  {
    MutexLock lock(&body->mu);
    CHECK(std::set<int>(body->started.begin(), body->started.end()) == std::set<int>{4, 6, 7, 8});
  }
  std::string output = *out.results[0].output;
  CHECK(output.starts_with("[\"kept1\",\"kept2\",\"kept3\",{\"i\":4,\"item\":40},\"kept5\""));
  CHECK(output.ends_with("{\"i\":8,\"item\":80}]"));
  CHECK(f.Record("m[4]")->attempts == 2);  // attempt numbers keep counting
}

TEST_CASE("map: the list `over` gave is checkpointed, and a resume numbers items by it" *
          doctest::timeout(60)) {
  Fixture f;
  auto body = std::make_shared<ItemBody>(&f.clock);
  RunOutcome first = f.Run(One(MapNode("m", Value(Range(3)), body, 2)));
  REQUIRE(first.status == RunStatus::kSucceeded);
  auto events = f.store.GetEvents("r1");
  REQUIRE(events.ok());
  std::vector<JsonText> journal;
  for (const EventRecord& e : *events) {
    if (e.node == "m" && e.kind == "checkpoint") journal.push_back(MakeJson(e.data_json));
  }
  REQUIRE(journal.size() == 1);
  CHECK(*journal[0] == "{\"map_list\":[10,20,30]}");
  CHECK(*RecordedMapList(journal) == "[10,20,30]");

  // `over` now gives another list; the resumed map keeps the recorded one.
  Fixture g;
  auto again = std::make_shared<ItemBody>(&g.clock);
  auto over_calls = std::make_shared<std::atomic<int>>(0);
  auto over = std::make_shared<FnFunction>([over_calls](const NodeContext&, const JsonText&) {
    over_calls->fetch_add(1);
    return NodeResult::Success(MakeJson("[7,8,9,11]"));
  });
  std::unordered_map<std::string, NodeRecord> earlier;
  NodeRecord kept;
  kept.run_id = "r1";
  kept.node = "m[1]";
  kept.status = NodeStatus::kSucceeded;
  kept.attempts = 1;
  kept.output_json = "\"kept1\"";
  earlier[kept.node] = kept;
  RunHistory history;
  history.journals["m"] = journal;
  RunOutcome out = g.Run(One(MapNode("m", over, again, 2)), earlier, history);
  REQUIRE(out.status == RunStatus::kSucceeded);
  CHECK(over_calls->load() == 0);
  CHECK(*out.results[0].output ==
        "[\"kept1\",{\"i\":2,\"item\":20},{\"i\":3,\"item\":30}]");
}

namespace {

// A store whose writer seems far behind until it has been looked at `polls` times.
class BackloggedStore : public testing::MemoryStore {
 public:
  uint64_t Backlog() override { return ++looks <= polls ? 1u << 30 : 0; }
  std::atomic<int> looks{0};
  int polls = 20;
};

}  // namespace

TEST_CASE("map: no item starts while the store's backlog is too large" * doctest::timeout(60)) {
  FakeClock clock{0.0};
  BackloggedStore store;
  Executor executor{&clock, &store, nullptr};
  auto body = std::make_shared<ItemBody>(&clock);
  std::atomic<int> started_while_held{-1};
  WorkflowSpec wf = One(MapNode("m", Value(Range(5)), body, 2));
  ExecutorOptions opts;
  opts.workers = 2;
  auto fut = std::async(std::launch::async,
                        [&] { return executor.Run(wf, "r1", MakeJson("{}"), {}, opts); });
  while (fut.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
    if (store.looks.load() == store.polls && started_while_held.load() < 0) {
      MutexLock lock(&body->mu);
      started_while_held = static_cast<int>(body->started.size());
    }
    if (!clock.RunNext()) std::this_thread::yield();
  }
  RunOutcome out = fut.get();
  CHECK(out.status == RunStatus::kSucceeded);
  CHECK(started_while_held.load() == 0);
  CHECK(store.looks.load() > store.polls);
  MutexLock lock(&body->mu);
  CHECK(body->started.size() == 5);
}

}  // namespace keel
