// Wait nodes on the fake clock: timers and signal waits park the run or hold
// it, their due time is fixed when first reached and kept across a resume,
// a signal sent early is kept for the wait and taken once, a timed-out
// signal wait fails with kind timeout, and a stopped run cancels a held wait.

#include "engine/wait_node.h"

#include <doctest/doctest.h>

#include <future>
#include <memory>
#include <thread>
#include <unordered_map>

#include "engine/executor.h"
#include "engine/fake_clock.h"
#include "engine/run_history.h"
#include "tests/fakes/memory_store.h"
#include "tests/fakes/node_spec.h"

namespace keel {
namespace {

using testing::MemoryStore;
using testing::Node;

class ConstBody : public NodeBody {
 public:
  explicit ConstBody(std::string json) : json_(std::move(json)) {}
  void Start(const NodeContext&, NodeCompletion done) override {
    done(NodeResult::Success(MakeJson(json_)));
  }

 private:
  const std::string json_;
};

NodeSpec Fn(std::string name, std::vector<std::string> after = {}) {
  return Node(std::move(name), std::move(after), std::make_shared<ConstBody>("1"));
}

NodeSpec Wait(std::string name, std::vector<std::string> after, WaitSpec wait) {
  NodeSpec n = Node(std::move(name), std::move(after), MakeWaitBody());
  n.kind = "wait";
  n.wait = std::make_shared<WaitSpec>(std::move(wait));
  return n;
}

WaitSpec Timer(double delay) {
  WaitSpec w;
  w.delay = delay;
  return w;
}

WaitSpec Signal(std::string name, double timeout = 0) {
  WaitSpec w;
  w.signal = std::move(name);
  w.timeout = timeout;
  return w;
}

struct Fixture {
  FakeClock clock{0.0};
  MemoryStore store;
  Executor executor{&clock, &store, nullptr};

  Fixture() {
    RunRecord run;
    run.id = "r1";
    REQUIRE(store.CreateRun(run).ok());
  }

  // Fake seconds the clock moves per step while a run is in progress. Fake
  // time runs on while a worker is slow to act, so elapsed times are bounded
  // loosely above.
  static constexpr double kStep = 0.01;

  // Runs `wf` on another thread while this one moves the fake clock on in
  // steps; *elapsed is the fake time it took (to within a few steps).
  RunOutcome Run(const WorkflowSpec& wf, bool hold, double* elapsed = nullptr,
                 bool resume = false) {
    std::unordered_map<std::string, NodeRecord> earlier;
    RunHistory history;
    if (resume) {
      REQUIRE(store.Flush().ok());
      auto nodes = store.GetNodes("r1");
      for (NodeRecord& rec : *nodes) earlier.emplace(rec.node, rec);
      history = ReadRunHistory(*store.GetEvents("r1"));
    }
    ExecutorOptions opts;
    opts.workers = 2;
    opts.hold_waits = hold;
    double start = clock.Now();
    auto fut = std::async(std::launch::async,
                          [&] { return executor.Run(wf, "r1", MakeJson("{}"), earlier, opts, history); });
    // Small steps rather than jumps from timer to timer: a wait re-arms its
    // next look on a worker, and a jump could pass it before it has.
    while (fut.wait_for(std::chrono::microseconds(100)) != std::future_status::ready) {
      clock.Advance(kStep);
    }
    if (elapsed) *elapsed = clock.Now() - start;
    REQUIRE(store.Flush().ok());
    return fut.get();
  }

  NodeRecord Record(const std::string& node) {
    auto nodes = store.GetNodes("r1");
    for (NodeRecord& rec : *nodes) {
      if (rec.node == node) return rec;
    }
    FAIL("no record of " << node);
    return {};
  }
};

WorkflowSpec Workflow(std::vector<NodeSpec> nodes) {
  WorkflowSpec wf;
  wf.name = "wf";
  wf.nodes = std::move(nodes);
  REQUIRE(Validate(wf).empty());
  return wf;
}

}  // namespace

TEST_CASE("a timer parks the run; a resume waits only the remainder" * doctest::timeout(30)) {
  Fixture f;
  WorkflowSpec wf = Workflow({Fn("a"), Wait("cool", {"a"}, Timer(10)), Fn("b", {"cool"})});
  const double reached = f.clock.WallNow();
  RunOutcome parked = f.Run(wf, /*hold=*/false);
  CHECK(parked.status == RunStatus::kWaiting);
  CHECK(parked.results[0].status == NodeStatus::kSucceeded);
  CHECK(parked.results[1].status == NodeStatus::kWaiting);
  CHECK(parked.results[2].status == NodeStatus::kPending);  // nothing downstream started
  NodeRecord rec = f.Record("cool");
  CHECK(rec.status == NodeStatus::kWaiting);
  WaitInfo info;
  REQUIRE(ParseWaitInfo(rec.output_json.value_or(""), &info));
  CHECK(info.due >= reached + 10);
  CHECK(info.due < reached + 10.5);

  // A resume before the due time without holding parks again, keeping the due time.
  f.clock.Advance(3);
  RunOutcome again = f.Run(wf, /*hold=*/false, nullptr, /*resume=*/true);
  CHECK(again.status == RunStatus::kWaiting);
  WaitInfo kept;
  REQUIRE(ParseWaitInfo(f.Record("cool").output_json.value_or(""), &kept));
  CHECK(kept.due == info.due);

  f.clock.Advance(1);  // 4 s (and the runs' steps) after the wait was reached
  const double left = info.due - f.clock.WallNow();
  CHECK(left < 7.0);  // the steps of a loaded machine move the clock on too
  CHECK(left > 3.0);  // (a busy machine takes more steps: only the 10 s matter)
  double elapsed = 0;
  RunOutcome done = f.Run(wf, /*hold=*/true, &elapsed, /*resume=*/true);
  CHECK(done.status == RunStatus::kSucceeded);
  CHECK(elapsed >= left - 1e-5);  // the remainder, not the whole delay
  CHECK(elapsed < left + 2.0);    // far from the 10 s a restarted timer would take
  CHECK(f.Record("cool").status == NodeStatus::kSucceeded);
  CHECK(f.Record("cool").output_json.value_or("").find("\"due\"") != std::string::npos);
  CHECK(f.Record("b").status == NodeStatus::kSucceeded);
}

TEST_CASE("a due timer does not wait at all" * doctest::timeout(30)) {
  Fixture f;
  WaitSpec w;
  w.until = f.clock.WallNow() - 5;
  double elapsed = -1;
  RunOutcome out = f.Run(Workflow({Wait("past", {}, w)}), /*hold=*/false, &elapsed);
  CHECK(out.status == RunStatus::kSucceeded);
  CHECK(elapsed < 5);  // no wait: only the steps while the run went by
}

TEST_CASE("a signal sent before the wait is reached is kept for it and taken once" *
          doctest::timeout(30)) {
  Fixture f;
  REQUIRE(f.store.SendSignal("r1", "approve", R"({"by":"ann"})", 0).ok());
  WorkflowSpec wf = Workflow(
      {Fn("draft"), Wait("approval", {"draft"}, Signal("approve")), Fn("publish", {"approval"})});
  RunOutcome out = f.Run(wf, /*hold=*/false);
  CHECK(out.status == RunStatus::kSucceeded);
  CHECK(f.Record("approval").output_json.value_or("") == R"({"by":"ann"})");
  // Taken: another wait finds nothing; the same node gets it again (a crash
  // between taking it and recording the node).
  CHECK_FALSE(f.store.TakeSignal("r1", "approve", "other", 0)->has_value());
  CHECK(f.store.TakeSignal("r1", "approve", "approval", 0)->value() == R"({"by":"ann"})");
}

TEST_CASE("an independent branch runs to completion while a wait parks" * doctest::timeout(30)) {
  Fixture f;
  WorkflowSpec wf =
      Workflow({Wait("approval", {}, Signal("approve")), Fn("publish", {"approval"}), Fn("side")});
  RunOutcome out = f.Run(wf, /*hold=*/false);
  CHECK(out.status == RunStatus::kWaiting);
  CHECK(out.results[2].status == NodeStatus::kSucceeded);
  CHECK(out.results[1].status == NodeStatus::kPending);
  auto nodes = f.store.GetNodes("r1");
  for (const NodeRecord& rec : *nodes) CHECK(rec.node != "publish");
  // The signal comes; the resume continues with its data as the output.
  REQUIRE(f.store.SendSignal("r1", "approve", "true", 0).ok());
  RunOutcome resumed = f.Run(wf, /*hold=*/false, nullptr, /*resume=*/true);
  CHECK(resumed.status == RunStatus::kSucceeded);
  CHECK(f.Record("approval").output_json.value_or("") == "true");
}

TEST_CASE("a held wait takes a signal sent meanwhile within one poll" * doctest::timeout(30)) {
  Fixture f;
  f.clock.After(3, [&f] { REQUIRE(f.store.SendSignal("r1", "go", "42", 0).ok()); });
  double elapsed = 0;
  RunOutcome out = f.Run(Workflow({Wait("w", {}, Signal("go", 60))}), /*hold=*/true, &elapsed);
  CHECK(out.status == RunStatus::kSucceeded);
  CHECK(*out.results[0].output == "42");
  CHECK(elapsed >= 3.0);
  CHECK(elapsed < 5.0);  // a poll or a few after it came; the timeout is 60 s
}

TEST_CASE("a signal wait times out with kind timeout; optional degrades the run" *
          doctest::timeout(30)) {
  Fixture f;
  NodeSpec w = Wait("approval", {}, Signal("approve", 5));
  w.optional = true;
  double elapsed = 0;
  RunOutcome out = f.Run(Workflow({w, Fn("after", {"approval"})}), /*hold=*/true, &elapsed);
  CHECK(out.status == RunStatus::kDegraded);
  CHECK(out.results[0].status == NodeStatus::kFailed);
  CHECK(out.results[0].error.kind() == ErrorKind::kTimeout);
  CHECK(elapsed >= 5.0 - 1e-5);
  CHECK(elapsed < 7.0);
  CHECK(out.results[1].status == NodeStatus::kSucceeded);
}

TEST_CASE("a resumed signal wait keeps its timeout's due time" * doctest::timeout(30)) {
  Fixture f;
  WorkflowSpec wf = Workflow({Wait("approval", {}, Signal("approve", 10))});
  CHECK(f.Run(wf, /*hold=*/false).status == RunStatus::kWaiting);
  f.clock.Advance(7);
  double elapsed = 0;
  RunOutcome out = f.Run(wf, /*hold=*/true, &elapsed, /*resume=*/true);
  CHECK(out.status == RunStatus::kFailed);
  CHECK(out.results[0].error.kind() == ErrorKind::kTimeout);
  CHECK(elapsed >= 3.0 - 1e-5);  // 10 s from when it was first reached, 7 s before
  CHECK(elapsed < 5.0);          // not the 10 s of a restarted timeout
}

TEST_CASE("stopping a run cancels a held wait at once" * doctest::timeout(30)) {
  Fixture f;
  f.clock.After(2, [&f] { f.executor.Stop("cancelled by keel cancel"); });
  double elapsed = 0;
  RunOutcome out = f.Run(Workflow({Wait("w", {}, Timer(100))}), /*hold=*/true, &elapsed);
  CHECK(out.status == RunStatus::kFailed);
  CHECK(out.results[0].status == NodeStatus::kCancelled);
  CHECK(elapsed < 10);
}

TEST_CASE("a held timer stopped before it is due keeps its due time on resume" *
          doctest::timeout(30)) {
  Fixture f;
  WorkflowSpec wf = Workflow({Wait("cool", {}, Timer(10))});
  f.clock.After(4, [&f] { f.executor.Stop("cannot save checkpoints: disk full"); });
  RunOutcome stopped = f.Run(wf, /*hold=*/true);
  CHECK(stopped.results[0].status == NodeStatus::kCancelled);
  CHECK(f.Record("cool").status == NodeStatus::kCancelled);  // no due time in the record
  double elapsed = 0;
  RunOutcome out = f.Run(wf, /*hold=*/true, &elapsed, /*resume=*/true);
  CHECK(out.status == RunStatus::kSucceeded);
  CHECK(elapsed < 8.0);  // from the wait_started event: not a fresh 10 s
  CHECK(elapsed > 4.0);
}

}  // namespace keel
