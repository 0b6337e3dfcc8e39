// RunFrontier against the executor: the same workflow run by the Executor
// and stepped through ComputeFrontier (as workers would) must end with the
// same node statuses and the same run status.

#include "engine/run_frontier.h"

#include <doctest/doctest.h>

#include <random>
#include <set>

#include "engine/executor.h"
#include "engine/fake_clock.h"
#include "tests/fakes/memory_store.h"
#include "tests/fakes/node_spec.h"

namespace keel {
namespace {

using testing::Node;

// Succeeds with its name, or fails, as the test decided.
class FixedBody : public NodeBody {
 public:
  explicit FixedBody(bool fails) : fails_(fails) {}
  void Start(const NodeContext& ctx, NodeCompletion done) override {
    if (fails_) return done(NodeResult::Failure(Status::Error(ErrorKind::kError, "boom")));
    done(NodeResult::Success(MakeJson("\"" + ctx.node + "\"")));
  }

 private:
  bool fails_;
};

// Steps the workflow as a cluster of workers would: launch what is ready,
// record each launched node's outcome, recompute, until settled.
Frontier Distribute(const WorkflowSpec& wf, const std::set<std::string>& failing,
                    std::vector<NodeRecord>* records) {
  for (int step = 0; step < 1000; ++step) {
    Frontier f = ComputeFrontier(wf, *records, {});
    for (const auto& c : f.cancel) {
      NodeRecord rec;
      rec.node = c.node;
      rec.status = NodeStatus::kCancelled;
      rec.error_kind = ErrorKind::kCancelled;
      rec.error_message = c.reason;
      records->push_back(rec);
    }
    if (f.settled && f.cancel.empty()) return f;
    for (const auto& name : f.ready) {
      NodeRecord rec;
      rec.node = name;
      if (failing.count(name)) {
        rec.status = NodeStatus::kFailed;
        rec.error_kind = ErrorKind::kError;
        rec.error_message = "boom";
      } else {
        rec.status = NodeStatus::kSucceeded;
        rec.output_json = "\"" + name + "\"";
      }
      records->push_back(rec);
    }
  }
  FAIL("the frontier never settled");
  return {};
}

NodeStatus StatusOf(const std::vector<NodeRecord>& records, const std::string& node) {
  for (const auto& r : records) {
    if (r.node == node) return r.status;
  }
  return NodeStatus::kPending;
}

TEST_CASE("a fresh run's roots are ready; nothing is settled" * doctest::timeout(10)) {
  WorkflowSpec wf;
  wf.nodes = {Node("a", {}, nullptr), Node("b", {}, nullptr), Node("c", {"a", "b"}, nullptr)};
  Frontier f = ComputeFrontier(wf, {}, {});
  CHECK(f.ready == std::vector<std::string>{"a", "b"});
  CHECK(f.cancel.empty());
  CHECK_FALSE(f.settled);
  // Launched nodes are not ready again.
  f = ComputeFrontier(wf, {}, {"a"});
  CHECK(f.ready == std::vector<std::string>{"b"});
}

TEST_CASE("a failed required node cancels its chain and fails the run" * doctest::timeout(10)) {
  WorkflowSpec wf;
  wf.nodes = {Node("a", {}, nullptr), Node("b", {"a"}, nullptr), Node("c", {"b"}, nullptr)};
  std::vector<NodeRecord> records;
  Frontier f = Distribute(wf, {"a"}, &records);
  CHECK(f.status == RunStatus::kFailed);
  CHECK(f.error == "a: error: boom");
  CHECK(StatusOf(records, "b") == NodeStatus::kCancelled);
  CHECK(StatusOf(records, "c") == NodeStatus::kCancelled);
}

TEST_CASE("join any goes ahead on the first success; the rest is given up" *
          doctest::timeout(10)) {
  WorkflowSpec wf;
  wf.nodes = {Node("a", {}, nullptr), Node("slow", {}, nullptr), Node("pre", {}, nullptr),
              Node("b", {"pre"}, nullptr), Node("j", {"a", "b"}, nullptr)};
  wf.nodes[4].policy.join.kind = JoinPolicy::Kind::kAny;
  std::vector<NodeRecord> records;
  NodeRecord a;
  a.node = "a";
  a.status = NodeStatus::kSucceeded;
  records.push_back(a);
  // "pre" is claimed by a worker; b has not started. Both are given up, as
  // the executor gives up b and stops pre; "slow" is no one's dependency.
  Frontier f = ComputeFrontier(wf, records, {"pre", "slow"});
  CHECK(f.ready == std::vector<std::string>{"j"});
  REQUIRE(f.cancel.size() == 2);
  CHECK(f.cancel[0].node == "b");
  CHECK(f.cancel[0].reason == "not needed: join of 'j' was satisfied without it");
  CHECK(f.cancel[1].node == "pre");
  CHECK(f.cancel[1].reason == "not needed: its dependents were cancelled");
  CHECK_FALSE(f.settled);
}

TEST_CASE("a running loser of a race is cancelled and excused" * doctest::timeout(10)) {
  WorkflowSpec wf;
  wf.nodes = {Node("slow", {}, nullptr), Node("fast", {}, nullptr),
              Node("answer", {"slow", "fast"}, nullptr)};
  wf.nodes[2].policy.join.kind = JoinPolicy::Kind::kAny;
  NodeRecord fast;
  fast.node = "fast";
  fast.status = NodeStatus::kSucceeded;
  Frontier f = ComputeFrontier(wf, {fast}, {"slow"});
  CHECK(f.ready == std::vector<std::string>{"answer"});
  REQUIRE(f.cancel.size() == 1);
  CHECK(f.cancel[0].node == "slow");
  CHECK(f.cancel[0].reason == "not needed: join of 'answer' was satisfied without it");
  NodeRecord slow;
  slow.node = "slow";
  slow.status = NodeStatus::kCancelled;
  slow.error_kind = ErrorKind::kCancelled;
  slow.error_message = f.cancel[0].reason;
  NodeRecord answer;
  answer.node = "answer";
  answer.status = NodeStatus::kSucceeded;
  f = ComputeFrontier(wf, {fast, slow, answer}, {});
  CHECK(f.settled);
  CHECK(f.status == RunStatus::kSucceeded);
}

TEST_CASE("join quorum that cannot be met cancels the join" * doctest::timeout(10)) {
  WorkflowSpec wf;
  wf.nodes = {Node("a", {}, nullptr), Node("b", {}, nullptr), Node("c", {}, nullptr),
              Node("q", {"a", "b", "c"}, nullptr)};
  wf.nodes[3].policy.join.kind = JoinPolicy::Kind::kQuorum;
  wf.nodes[3].policy.join.quorum = 2;
  std::vector<NodeRecord> records;
  Frontier f = Distribute(wf, {"a", "b"}, &records);
  CHECK(StatusOf(records, "q") == NodeStatus::kCancelled);
  CHECK(f.status == RunStatus::kFailed);
}

TEST_CASE("a waiting node parks its dependents and the run" * doctest::timeout(10)) {
  WorkflowSpec wf;
  wf.nodes = {Node("w", {}, nullptr), Node("after", {"w"}, nullptr)};
  NodeRecord w;
  w.node = "w";
  w.status = NodeStatus::kWaiting;
  Frontier f = ComputeFrontier(wf, {w}, {});
  CHECK(f.ready.empty());
  CHECK(f.settled);
  CHECK(f.status == RunStatus::kWaiting);
}

// Random DAGs (join all, optional nodes, failing nodes): the executor and
// the frontier agree on every node's status and on the run's.
TEST_CASE("random workflows end as the executor ends them" * doctest::timeout(120)) {
  std::mt19937 rng(20261205);
  for (int trial = 0; trial < 300; ++trial) {
    CAPTURE(trial);
    int n = 2 + int(rng() % 12);
    WorkflowSpec wf;
    wf.name = "w";
    std::set<std::string> failing;
    for (int i = 0; i < n; ++i) {
      std::string name = "n" + std::to_string(i);
      std::vector<std::string> after;
      for (int d = 0; d < i; ++d) {
        if (rng() % 4 == 0) after.push_back("n" + std::to_string(d));
      }
      bool fails = rng() % 5 == 0;
      bool optional = rng() % 4 == 0;
      if (fails) failing.insert(name);
      wf.nodes.push_back(Node(name, after, std::make_shared<FixedBody>(fails), optional));
    }
    FakeClock clock;
    testing::MemoryStore store;
    Executor executor(&clock, &store, nullptr);
    ExecutorOptions opts;
    opts.workers = 2;
    RunOutcome outcome = executor.Run(wf, "r", MakeJson("{}"), {}, opts);

    std::vector<NodeRecord> records;
    Frontier f = Distribute(wf, failing, &records);
    REQUIRE(f.settled);
    CHECK(f.status == outcome.status);
    int required_failures = 0;
    for (int i = 0; i < n; ++i) {
      CAPTURE(wf.nodes[i].name);
      CHECK(StatusOf(records, wf.nodes[i].name) == outcome.results[i].status);
      if (outcome.results[i].status == NodeStatus::kFailed && !wf.nodes[i].optional) {
        ++required_failures;
      }
    }
    if (required_failures == 1) CHECK(f.error == outcome.error);
  }
}

}  // namespace
}  // namespace keel
