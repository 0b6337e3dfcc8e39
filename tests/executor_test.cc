#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <set>
#include <thread>

#include "engine/executor.h"
#include "engine/fake_clock.h"
#include "engine/mutex.h"
#include "tests/fakes/fn_body.h"
#include "tests/fakes/memory_store.h"
#include "tests/fakes/node_spec.h"

namespace keel {
namespace {

using testing::MemoryStore;
using testing::Node;
using testing::BodyFn;
using testing::FnBody;

// Completes only when the test calls ReleaseAll(), from the test's thread.
class HeldBody : public NodeBody {
 public:
  void Start(const NodeContext& ctx, NodeCompletion done) override {
    MutexLock lock(&mu);
    held.push_back(std::move(done));
  }
  size_t size() {
    MutexLock lock(&mu);
    return held.size();
  }
  void ReleaseAll() {
    std::vector<NodeCompletion> all;
    {
      MutexLock lock(&mu);
      all.swap(held);
    }
    for (auto& done : all) done(NodeResult::Success(MakeJson("1")));
  }
  Mutex mu;
  std::vector<NodeCompletion> held GUARDED_BY(mu);
};

NodeResult Ok(const std::string& json) { return NodeResult::Success(MakeJson(json)); }

// "[dep outputs...]" so a test can see what a node received.
std::shared_ptr<FnBody> Echo() {
  return std::make_shared<FnBody>([](const NodeContext& ctx) {
    std::string out = "[";
    for (size_t i = 0; i < ctx.deps.size(); ++i) {
      if (i) out += ",";
      out += *ctx.deps[i].second;
    }
    return Ok(out + "]");
  });
}

struct Fixture {
  FakeClock clock;
  MemoryStore store;
  Executor executor{&clock, &store, nullptr};

  RunOutcome Run(const WorkflowSpec& wf, int workers = 2,
                 const std::unordered_map<std::string, NodeRecord>& earlier = {}) {
    ExecutorOptions opts;
    opts.workers = workers;
    RunOutcome out = executor.Run(wf, "r1", MakeJson("{}"), earlier, opts);
    REQUIRE(store.Flush().ok());
    return out;
  }
  NodeRecord Record(const std::string& node) {
    auto nodes = store.GetNodes("r1");
    for (auto& rec : *nodes) {
      if (rec.node == node) return rec;
    }
    FAIL("no record for " << node);
    return {};
  }
};

const NodeResult& ResultOf(const WorkflowSpec& wf, const RunOutcome& out, const std::string& n) {
  return out.results[wf.Find(n)];
}

}  // namespace

TEST_CASE("a chain passes outputs along and finishes in order" * doctest::timeout(30)) {
  for (int workers : {1, 2, 4}) {
    Fixture f;
    WorkflowSpec wf;
    wf.name = "chain";
    auto first = std::make_shared<FnBody>([](const NodeContext&) { return Ok("7"); });
    wf.nodes = {Node("a", {}, first), Node("b", {"a"}, Echo()), Node("c", {"b"}, Echo())};
    RunOutcome out = f.Run(wf, workers);
    CHECK(out.status == RunStatus::kSucceeded);
    CHECK(*ResultOf(wf, out, "c").output == "[[7]]");
    CHECK(f.Record("b").output_json == std::optional<std::string>("[7]"));
    CHECK(f.Record("c").attempts == 1);
  }
}

TEST_CASE("independent nodes run at the same time" * doctest::timeout(30)) {
  for (int workers : {2, 4}) {
    Fixture f;
    std::atomic<int> started{0};
    auto meet = std::make_shared<FnBody>([&](const NodeContext&) {
      started.fetch_add(1);
      auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (started.load() < 2 && std::chrono::steady_clock::now() < give_up) {
        std::this_thread::yield();
      }
      return Ok(started.load() >= 2 ? "true" : "false");
    });
    WorkflowSpec wf;
    wf.name = "pair";
    wf.nodes = {Node("x", {}, meet), Node("y", {}, meet), Node("z", {"x", "y"}, Echo())};
    RunOutcome out = f.Run(wf, workers);
    CHECK(*ResultOf(wf, out, "z").output == "[true,true]");
  }
}

TEST_CASE("waiting bodies hold no worker: 200 held nodes on one worker" * doctest::timeout(30)) {
  Fixture f;
  auto held = std::make_shared<HeldBody>();
  WorkflowSpec wf;
  wf.name = "fan";
  std::vector<std::string> all;
  for (int i = 0; i < 200; ++i) {
    wf.nodes.push_back(Node("n" + std::to_string(i), {}, held));
    all.push_back("n" + std::to_string(i));
  }
  wf.nodes.push_back(Node("join", all, Echo()));
  std::thread releaser([&] {
    auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (held->size() < 200 && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    held->ReleaseAll();
  });
  RunOutcome out = f.Run(wf, 1);
  releaser.join();
  CHECK(out.status == RunStatus::kSucceeded);
  CHECK(ResultOf(wf, out, "join").output->size() == 1 + 200 * 2 - 1 + 1);
}

TEST_CASE("a skipped node's dependents still run and see it skipped") {
  Fixture f;
  auto skip = std::make_shared<FnBody>([](const NodeContext&) { return NodeResult::Skipped(); });
  auto report = std::make_shared<FnBody>([](const NodeContext& ctx) {
    return Ok("{\"deps\":" + std::to_string(ctx.deps.size()) + ",\"skipped\":\"" +
              (ctx.skipped.empty() ? "" : ctx.skipped[0]) + "\"}");
  });
  WorkflowSpec wf;
  wf.name = "skip";
  wf.nodes = {Node("s", {}, skip), Node("r", {"s"}, report)};
  RunOutcome out = f.Run(wf);
  CHECK(out.status == RunStatus::kSucceeded);
  CHECK(ResultOf(wf, out, "s").status == NodeStatus::kSkipped);
  CHECK(*ResultOf(wf, out, "r").output == "{\"deps\":0,\"skipped\":\"s\"}");
}

TEST_CASE("an optional failure degrades the run; dependents run without it") {
  Fixture f;
  auto boom = std::make_shared<FnBody>([](const NodeContext&) {
    return NodeResult::Failure(Status::Error(ErrorKind::kTransient, "flaky"));
  });
  auto report = std::make_shared<FnBody>([](const NodeContext& ctx) {
    return Ok("\"" + (ctx.failed.empty() ? std::string() : ctx.failed[0]) + "\"");
  });
  WorkflowSpec wf;
  wf.name = "opt";
  wf.nodes = {Node("o", {}, boom, /*optional=*/true), Node("r", {"o"}, report)};
  RunOutcome out = f.Run(wf);
  CHECK(out.status == RunStatus::kDegraded);
  CHECK(*ResultOf(wf, out, "r").output == "\"o\"");
  NodeRecord o = f.Record("o");
  CHECK(o.status == NodeStatus::kFailed);
  CHECK(o.error_kind == ErrorKind::kTransient);
  CHECK(o.error_message == "flaky");
}

TEST_CASE("a required failure cancels dependents; other branches finish") {
  for (int workers : {1, 2}) {
    Fixture f;
    auto boom = std::make_shared<FnBody>([](const NodeContext&) {
      return NodeResult::Failure(Status::Error(ErrorKind::kError, "bad"));
    });
    auto never = std::make_shared<FnBody>([](const NodeContext&) { return Ok("0"); });
    WorkflowSpec wf;
    wf.name = "fail";
    wf.nodes = {Node("bad", {}, boom),          Node("child", {"bad"}, never),
                Node("grand", {"child"}, never), Node("side", {}, Echo()),
                Node("side2", {"side"}, Echo())};
    RunOutcome out = f.Run(wf, workers);
    CHECK(out.status == RunStatus::kFailed);
    CHECK(out.error == "bad: error: bad");
    CHECK(never->calls.load() == 0);
    CHECK(ResultOf(wf, out, "child").status == NodeStatus::kCancelled);
    CHECK(ResultOf(wf, out, "grand").status == NodeStatus::kCancelled);
    CHECK(f.Record("grand").error_message == "dependency 'child' was cancelled");
    CHECK(ResultOf(wf, out, "side2").status == NodeStatus::kSucceeded);
  }
}

TEST_CASE("a body that throws fails its node, not the process") {
  Fixture f;
  auto thrower = std::make_shared<FnBody>([](const NodeContext&) -> NodeResult {
    throw std::runtime_error("oops");
  });
  WorkflowSpec wf;
  wf.name = "throw";
  wf.nodes = {Node("t", {}, thrower)};
  RunOutcome out = f.Run(wf);
  CHECK(out.status == RunStatus::kFailed);
  CHECK(ResultOf(wf, out, "t").error.message() == "oops");
}

TEST_CASE("kept nodes are not run again and feed their outputs; others continue counting") {
  Fixture f;
  auto a = std::make_shared<FnBody>([](const NodeContext&) { return Ok("1"); });
  std::atomic<int> seen_attempt{0};
  auto b = std::make_shared<FnBody>([&](const NodeContext& ctx) {
    seen_attempt = ctx.attempt;
    return Ok("[" + *ctx.deps[0].second + "]");
  });
  WorkflowSpec wf;
  wf.name = "resume";
  wf.nodes = {Node("a", {}, a), Node("b", {"a"}, b)};
  NodeRecord kept;
  kept.node = "a";
  kept.status = NodeStatus::kSucceeded;
  kept.attempts = 1;
  kept.output_json = "\"old\"";
  NodeRecord failed;
  failed.node = "b";
  failed.status = NodeStatus::kFailed;
  failed.attempts = 2;
  RunOutcome out = f.Run(wf, 2, {{"a", kept}, {"b", failed}});
  CHECK(a->calls.load() == 0);
  CHECK(seen_attempt.load() == 3);
  CHECK(*ResultOf(wf, out, "b").output == "[\"old\"]");
  CHECK(out.status == RunStatus::kSucceeded);
}

TEST_CASE("records are queued in completion order: finished set closed under deps" *
          doctest::timeout(60)) {
  Fixture f;
  WorkflowSpec wf;
  wf.name = "layers";
  for (int layer = 0; layer < 20; ++layer) {
    for (int k = 0; k < 10; ++k) {
      std::vector<std::string> after;
      if (layer > 0) {
        after.push_back("n" + std::to_string(layer - 1) + "_" + std::to_string(k));
        after.push_back("n" + std::to_string(layer - 1) + "_" + std::to_string((k + 3) % 10));
      }
      wf.nodes.push_back(Node("n" + std::to_string(layer) + "_" + std::to_string(k), after, Echo()));
    }
  }
  RunOutcome out = f.Run(wf, 4);
  CHECK(out.status == RunStatus::kSucceeded);
  std::set<std::string> finished;
  for (auto& w : f.store.queued()) {
    auto* rec = std::get_if<NodeRecord>(&w);
    if (!rec || rec->status != NodeStatus::kSucceeded) continue;
    for (auto& dep : wf.nodes[wf.Find(rec->node)].after) CHECK(finished.count(dep) == 1);
    finished.insert(rec->node);
  }
  CHECK(finished.size() == wf.nodes.size());
  // Only sinks keep outputs in the outcome; the store has them all.
  CHECK_FALSE(ResultOf(wf, out, "n0_0").output);
  CHECK(ResultOf(wf, out, "n19_0").output);
}

TEST_CASE("events name every state change") {
  Fixture f;
  WorkflowSpec wf;
  wf.name = "ev";
  wf.nodes = {Node("a", {}, Echo())};
  f.Run(wf);
  auto events = f.store.GetEvents("r1").value();
  REQUIRE(events.size() == 2);
  CHECK(events[0].kind == "node_started");
  CHECK(events[1].kind == "node_succeeded");
  CHECK(events[1].node == "a");
}

}  // namespace keel
