// keel.map, keel.call and keel.loop in the engine, on a fake clock:
// scheduling of map items (max_concurrency, lazy creation, tolerate, empty
// lists, resume), loops (done_when, max_iterations, resume mid-loop) and
// calls.
#include "engine/dynamic_node.h"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <set>
#include <thread>

#include "engine/executor.h"
#include "engine/fake_clock.h"
#include "engine/mutex.h"
#include "tests/fakes/memory_store.h"

namespace keel {
namespace {

using testing::MemoryStore;
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

std::shared_ptr<NodeFunction> Value(const std::string& json) {
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

NodeSpec Plain(std::string name, std::shared_ptr<NodeBody> body) {
  NodeSpec n;
  n.name = std::move(name);
  n.body = std::move(body);
  n.policy.retry.attempts = 1;
  return n;
}

NodeSpec MapNode(std::string name, std::shared_ptr<NodeFunction> over,
                 std::shared_ptr<NodeBody> item, int max_concurrency = 0, double tolerate = 0,
                 int retries = 1) {
  auto dyn = std::make_shared<DynamicNode>();
  dyn->kind = DynamicNode::Kind::kMap;
  dyn->start = std::move(over);
  dyn->max_concurrency = max_concurrency;
  dyn->tolerate = tolerate;
  auto wf = std::make_shared<WorkflowSpec>();
  wf->name = name;
  NodeSpec inner = Plain("", std::move(item));
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

NodeSpec SubNode(std::string name, DynamicNode::Kind kind, std::string workflow,
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

std::string Range(int n) {
  std::string out = "[";
  for (int i = 1; i <= n; ++i) out += (i > 1 ? "," : "") + std::to_string(i * 10);
  return out + "]";
}

struct Fixture {
  FakeClock clock{0.0};
  MemoryStore store;
  Executor executor{&clock, &store, nullptr};
  std::vector<WorkflowSpec> library;
  // While set and true, Run fires no timer: lets a test see work start
  // before fake time jumps past it.
  std::function<bool()> hold;

  RunOutcome Run(const WorkflowSpec& wf,
                 const std::unordered_map<std::string, NodeRecord>& earlier = {},
                 const RunHistory& history = {}) {
    ExecutorOptions opts;
    opts.workers = 2;
    opts.library = &library;
    auto fut = std::async(std::launch::async, [&] {
      return executor.Run(wf, "r1", MakeJson("{}"), earlier, opts, history);
    });
    while (fut.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
      if ((hold && hold()) || !clock.RunNext()) std::this_thread::yield();
    }
    REQUIRE(store.Flush().ok());
    return fut.get();
  }
  std::optional<NodeRecord> Record(const std::string& node) {
    auto nodes = store.GetNodes("r1");
    for (auto& rec : *nodes) {
      if (rec.node == node) return rec;
    }
    return std::nullopt;
  }
};

WorkflowSpec One(NodeSpec node) {
  WorkflowSpec wf;
  wf.name = "main";
  wf.nodes.push_back(std::move(node));
  return wf;
}

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

TEST_CASE("loop: runs iterations until done_when, recording inner nodes per iteration" *
          doctest::timeout(60)) {
  Fixture f;
  auto inner = std::make_shared<ParamsBody>();
  WorkflowSpec sub;
  sub.name = "round";
  sub.params = MakeJson("{\"x\":1}");
  sub.nodes.push_back(Plain("review", inner));
  f.library.push_back(sub);
  auto done_when = std::make_shared<FnFunction>([](const NodeContext&, const JsonText& out) {
    bool done = out->find("\"iteration\":3") != std::string::npos;
    return NodeResult::Success(MakeJson(done ? "true" : "false"));
  });
  RunOutcome out =
      f.Run(One(SubNode("r", DynamicNode::Kind::kLoop, "round", Value("null"), done_when, 5)));
  REQUIRE(out.status == RunStatus::kSucceeded);
  CHECK(inner->calls.load() == 3);
  CHECK(*out.results[0].output ==
        "{\"x\":1,\"iteration\":3,\"previous\":{\"x\":1,\"iteration\":2,"
        "\"previous\":{\"x\":1,\"iteration\":1}}}");
  CHECK(f.Record("r#1/review"));
  CHECK(f.Record("r#3/review"));
  CHECK_FALSE(f.Record("r#4/review"));
}

TEST_CASE("loop: max_iterations without done_when is a permanent failure" * doctest::timeout(60)) {
  Fixture f;
  WorkflowSpec sub;
  sub.name = "round";
  sub.nodes.push_back(Plain("review", std::make_shared<ParamsBody>()));
  f.library.push_back(sub);
  RunOutcome out =
      f.Run(One(SubNode("r", DynamicNode::Kind::kLoop, "round", Value("null"), Value("false"), 2)));
  CHECK(out.status == RunStatus::kFailed);
  CHECK(out.results[0].error.kind() == ErrorKind::kPermanent);
  CHECK(out.error.find("max_iterations (2)") != std::string::npos);
  CHECK(f.Record("r#2/review"));
}

TEST_CASE("loop: a resume continues from the first unfinished iteration" * doctest::timeout(60)) {
  Fixture f;
  auto inner = std::make_shared<ParamsBody>();
  WorkflowSpec sub;
  sub.name = "round";
  sub.nodes.push_back(Plain("review", inner));
  f.library.push_back(sub);
  auto done_when = std::make_shared<FnFunction>([](const NodeContext&, const JsonText& out) {
    bool done = out->find("\"iteration\":3") != std::string::npos;
    return NodeResult::Success(MakeJson(done ? "true" : "false"));
  });
  WorkflowSpec wf =
      One(SubNode("r", DynamicNode::Kind::kLoop, "round", Value("null"), done_when, 5));
  std::unordered_map<std::string, NodeRecord> earlier;
  for (int i : {1, 2}) {
    NodeRecord rec;
    rec.run_id = "r1";
    rec.node = "r#" + std::to_string(i) + "/review";
    rec.status = NodeStatus::kSucceeded;
    rec.attempts = 1;
    rec.output_json = "{\"iteration\":" + std::to_string(i) + ",\"recorded\":true}";
    earlier[rec.node] = rec;
  }
  RunOutcome out = f.Run(wf, earlier);
  REQUIRE(out.status == RunStatus::kSucceeded);
  CHECK(inner->calls.load() == 1);
  MutexLock lock(&inner->mu);
  REQUIRE(inner->seen.size() == 1);
  // Iteration 3 gets iteration 2's recorded output as `previous`.
  CHECK(inner->seen[0] == "{\"iteration\":3,\"previous\":{\"iteration\":2,\"recorded\":true}}");
}

TEST_CASE("call: runs the workflow with params, records its nodes under the caller" *
          doctest::timeout(60)) {
  Fixture f;
  auto inner = std::make_shared<ParamsBody>();
  WorkflowSpec sub;
  sub.name = "enrich";
  sub.params = MakeJson("{\"x\":1,\"y\":2}");
  sub.nodes.push_back(Plain("fetch", inner));
  f.library.push_back(sub);
  RunOutcome out =
      f.Run(One(SubNode("c", DynamicNode::Kind::kCall, "enrich", Value("{\"x\":5}"), nullptr)));
  REQUIRE(out.status == RunStatus::kSucceeded);
  CHECK(*out.results[0].output == "{\"x\":5,\"y\":2}");
  auto rec = f.Record("c/fetch");
  REQUIRE(rec);
  CHECK(rec->status == NodeStatus::kSucceeded);
  // A failing inner node fails the call with its kind, naming it.
  Fixture g;
  WorkflowSpec bad;
  bad.name = "enrich";
  bad.nodes.push_back(Plain("fetch", std::make_shared<ItemBody>(&g.clock, [](int, int) {
                              return Status::Error(ErrorKind::kRateLimited, "slow down");
                            })));
  g.library.push_back(bad);
  RunOutcome failed =
      g.Run(One(SubNode("c", DynamicNode::Kind::kCall, "enrich", Value("null"), nullptr)));
  CHECK(failed.status == RunStatus::kFailed);
  CHECK(failed.results[0].error.kind() == ErrorKind::kRateLimited);
  CHECK(failed.error.find("c/fetch") != std::string::npos);
}

TEST_CASE("SplitJsonArray finds the elements of an array" * doctest::timeout(10)) {
  std::vector<std::pair<size_t, size_t>> spans;
  std::string json = "[1,\"a,]\\\"\",{\"x\":[1,2]},[],null, true]";
  REQUIRE(SplitJsonArray(json, &spans));
  std::vector<std::string> parts;
  for (auto [b, e] : spans) parts.push_back(json.substr(b, e - b));
  CHECK(parts ==
        std::vector<std::string>{"1", "\"a,]\\\"\"", "{\"x\":[1,2]}", "[]", "null", "true"});
  CHECK_FALSE(SplitJsonArray("{\"a\":1}", &spans));
  CHECK_FALSE(SplitJsonArray("\"s\"", &spans));
  CHECK(SplitJsonArray("[]", &spans));
  CHECK(spans.empty());
}

}  // namespace keel

namespace keel {
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
