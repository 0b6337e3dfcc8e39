// The policy stack through the executor, on a fake clock: fallback
// workflows, joins, bulkheads, the run-wide retry budget, late successes
// and resumes. Retries, timeouts and breakers are in
// policy_executor_test.cc.

#include <doctest/doctest.h>

#include <atomic>

#include "tests/fakes/executor_fixture.h"

namespace keel {
namespace {

using testing::ConstBody;
using testing::Fixture;
using testing::HangingBody;
using testing::Node;
using testing::One;
using testing::Permanent;
using testing::ScriptedBody;
using testing::Transient;

// Stands for a body stuck in a call its deadline cannot interrupt: it
// enforces its own deadline (so no timer cancels it), but lets `seconds` of
// fake time pass before it reports success.
class OverrunBody : public NodeBody {
 public:
  OverrunBody(FakeClock* clock, double seconds) : clock_(clock), seconds_(seconds) {}
  bool EnforcesDeadline() const override { return true; }
  void Start(const NodeContext& ctx, NodeCompletion done) override {
    calls.fetch_add(1);
    clock_->Advance(seconds_);
    done(NodeResult::Success(MakeJson("\"late\"")));
  }
  std::atomic<int> calls{0};

 private:
  FakeClock* clock_;
  double seconds_;
};

}  // namespace

TEST_CASE("fallback workflows answer in order, with the node's deps" * doctest::timeout(30)) {
  Fixture f;
  WorkflowSpec broken;
  broken.name = "broken";
  broken.nodes.push_back(Node("output", std::make_shared<ScriptedBody>(std::vector<Status>(5, Permanent()))));
  WorkflowSpec offline;
  offline.name = "offline";
  offline.nodes.push_back(Node("draft", std::make_shared<ConstBody>("\"offline\"")));
  f.library = {broken, offline};
  WorkflowSpec wf;
  wf.name = "main";
  wf.nodes.push_back(Node("topic", std::make_shared<ConstBody>("1")));
  NodeSpec n = Node("write", std::make_shared<ScriptedBody>(std::vector<Status>(5, Permanent())),
                    {"topic"});
  n.policy.fallback = {{"broken", {}}, {"offline", {}}};
  wf.nodes.push_back(n);
  wf.nodes.push_back(Node("publish", std::make_shared<ConstBody>("2"), {"write"}));
  RunOutcome out = f.Run(wf);
  CHECK(out.status == RunStatus::kSucceeded);
  CHECK(out.results[1].status == NodeStatus::kFallback);
  std::string publish = *out.results[2].output;
  CHECK(publish.find("\"write\":{\"v\":\"offline\",\"deps\":{\"topic\":") != std::string::npos);
  CHECK(f.CountEvents("write", "fallback_started") == 2);
  CHECK(f.CountEvents("write", "fallback_finished") == 2);
}

TEST_CASE("fallback entries are picked by the failure's kind and see the failure" *
          doctest::timeout(30)) {
  Fixture f;
  WorkflowSpec cheap;
  cheap.name = "cheap";
  cheap.nodes.push_back(Node("output", std::make_shared<ConstBody>("\"cheap\"")));
  WorkflowSpec offline;
  offline.name = "offline";
  offline.nodes.push_back(Node("output", std::make_shared<ConstBody>("\"offline\"")));
  f.library = {cheap, offline};
  WorkflowSpec wf;
  wf.name = "main";
  auto limited = std::make_shared<ScriptedBody>(
      std::vector<Status>(5, Status::Error(ErrorKind::kRateLimited, "slow down")));
  NodeSpec a = Node("limited", limited);
  a.policy.retry.attempts = 2;
  a.policy.fallback = {{"cheap", {ErrorKind::kTransient}},
                       {"offline", {ErrorKind::kRateLimited, ErrorKind::kTimeout}}};
  NodeSpec b = Node("broken", std::make_shared<ScriptedBody>(std::vector<Status>(5, Permanent())));
  b.policy.fallback = {{"cheap", {ErrorKind::kTransient}}};
  wf.nodes = {a, b};
  RunOutcome out = f.Run(wf);
  CHECK(out.status == RunStatus::kFailed);
  REQUIRE(out.results[0].status == NodeStatus::kFallback);
  std::string limited_out = *out.results[0].output;
  CHECK(limited_out.find("\"v\":\"offline\"") != std::string::npos);
  CHECK(limited_out.find("\"failure\":{\"node\":\"limited\",\"kind\":\"rate_limited\","
                         "\"message\":\"slow down\",\"attempts\":2}") != std::string::npos);
  CHECK(f.CountEvents("limited", "fallback_started") == 1);
  // No entry is for a permanent failure: the node fails as it would without one.
  CHECK(out.results[1].status == NodeStatus::kFailed);
  CHECK(out.results[1].error.kind() == ErrorKind::kPermanent);
  CHECK(f.CountEvents("broken", "fallback_started") == 0);
}

TEST_CASE("join any runs on the first success and cancels the losers" * doctest::timeout(30)) {
  Fixture f;
  auto hang = std::make_shared<HangingBody>();
  WorkflowSpec wf;
  wf.name = "race";
  wf.nodes = {Node("slow1", hang), Node("fast", std::make_shared<ConstBody>("1")),
              Node("slow2", hang)};
  NodeSpec j = Node("first", std::make_shared<ConstBody>("0"), {"slow1", "fast", "slow2"});
  j.policy.join.kind = JoinPolicy::Kind::kAny;
  wf.nodes.push_back(j);
  RunOutcome out = f.Run(wf);
  CHECK(out.status == RunStatus::kSucceeded);
  CHECK(hang->running.load() == 0);
  CHECK(out.results[0].status == NodeStatus::kCancelled);
  CHECK(out.results[2].status == NodeStatus::kCancelled);
  std::string first = *out.results[3].output;
  CHECK(first.find("\"deps\":{\"fast\":") != std::string::npos);
  CHECK(first.find("\"failed\":[\"slow1\",\"slow2\"]") != std::string::npos);
  CHECK(f.CountEvents("first", "join_satisfied") == 1);
}

TEST_CASE("quorum and best-effort joins" * doctest::timeout(30)) {
  Fixture f;
  auto hang = std::make_shared<HangingBody>();
  WorkflowSpec wf;
  wf.name = "joins";
  wf.nodes = {Node("a", std::make_shared<ConstBody>("1")), Node("b", std::make_shared<ConstBody>("2")),
              Node("c", hang)};
  NodeSpec q = Node("q", std::make_shared<ConstBody>("0"), {"a", "b", "c"});
  q.policy.join.kind = JoinPolicy::Kind::kQuorum;
  q.policy.join.quorum = 2;
  wf.nodes.push_back(q);
  RunOutcome out = f.Run(wf);
  CHECK(out.status == RunStatus::kSucceeded);
  CHECK(out.results[2].status == NodeStatus::kCancelled);

  Fixture g;
  auto hang2 = std::make_shared<HangingBody>();
  WorkflowSpec be;
  be.name = "be";
  be.nodes = {Node("a", std::make_shared<ConstBody>("1")), Node("slow", hang2)};
  NodeSpec b = Node("b", std::make_shared<ConstBody>("0"), {"a", "slow"});
  b.policy.join.kind = JoinPolicy::Kind::kBestEffort;
  b.policy.join.best_effort = 5;
  be.nodes.push_back(b);
  double elapsed = 0;
  RunOutcome out2 = g.Run(be, &elapsed);
  CHECK(out2.status == RunStatus::kSucceeded);
  CHECK(elapsed == doctest::Approx(5.0));
  CHECK(out2.results[1].status == NodeStatus::kCancelled);
  CHECK(out2.results[2].output->find("\"failed\":[\"slow\"]") != std::string::npos);
}

TEST_CASE("an unmet quorum cancels the join node and fails the run" * doctest::timeout(30)) {
  Fixture f;
  WorkflowSpec wf;
  wf.name = "q";
  wf.nodes = {Node("a", std::make_shared<ScriptedBody>(std::vector<Status>{Permanent()})),
              Node("b", std::make_shared<ScriptedBody>(std::vector<Status>{Permanent()})),
              Node("c", std::make_shared<ConstBody>("1"))};
  NodeSpec q = Node("q", std::make_shared<ConstBody>("0"), {"a", "b", "c"});
  q.policy.join.kind = JoinPolicy::Kind::kQuorum;
  q.policy.join.quorum = 2;
  wf.nodes.push_back(q);
  RunOutcome out = f.Run(wf);
  CHECK(out.status == RunStatus::kFailed);
  CHECK(out.results[3].status == NodeStatus::kCancelled);
  CHECK(out.results[3].error.message() == "join quorum: 1 of 3 dependencies succeeded, 2 needed");
}

TEST_CASE("bulkheads cap concurrent attempts without holding workers" * doctest::timeout(30)) {
  Fixture f;
  auto hang = std::make_shared<HangingBody>();
  WorkflowSpec wf;
  wf.name = "bulk";
  for (int i = 0; i < 10; ++i) {
    NodeSpec n = Node("n" + std::to_string(i), hang);
    n.optional = true;
    n.policy.timeout = 1;
    n.policy.max_concurrency = 3;
    n.policy.bulkhead_key = "shared";
    wf.nodes.push_back(n);
  }
  // The first attempts' timeouts fire only once the bulkhead is full.
  f.hold = [&] { return hang->calls.load() < 3; };
  RunOutcome out = f.Run(wf, nullptr, /*workers=*/1);
  CHECK(hang->calls.load() == 10);
  CHECK(hang->peak.load() == 3);
  Fixture g;
  auto hang2 = std::make_shared<HangingBody>();
  g.hold = [&] { return hang2->calls.load() < 2; };
  for (auto& n : wf.nodes) {
    n.body = hang2;
    n.policy.max_concurrency = 0;
  }
  g.Run(wf, nullptr, 1, /*max_inflight=*/2);
  CHECK(hang2->peak.load() == 2);
}

TEST_CASE("the run-wide retry budget caps retries" * doctest::timeout(30)) {
  Fixture f;
  auto body = std::make_shared<ScriptedBody>(std::vector<Status>(100, Transient()));
  WorkflowSpec wf;
  wf.name = "budget";
  wf.retry_budget = 3;
  for (int i = 0; i < 4; ++i) {
    NodeSpec n = Node("n" + std::to_string(i), body);
    n.optional = true;
    n.policy.retry.attempts = 5;
    n.policy.retry.base = 0.1;
    wf.nodes.push_back(n);
  }
  f.Run(wf);
  CHECK(body->calls.load() == 4 + 3);
}

TEST_CASE("a success that arrives after the attempt's timeout is a timeout" *
          doctest::timeout(30)) {
  Fixture f;
  auto body = std::make_shared<OverrunBody>(&f.clock, 5);
  NodeSpec n = Node("stuck", body);
  n.policy.timeout = 1;
  n.policy.retry.attempts = 2;
  n.policy.retry.base = 1;
  n.policy.retry.jitter = Jitter::kNone;
  RunOutcome out = f.Run(One(n));
  CHECK(out.status == RunStatus::kFailed);
  CHECK(body->calls.load() == 2);  // the timeout is retried like any other
  CHECK(out.results[0].status == NodeStatus::kFailed);
  CHECK(out.results[0].error.kind() == ErrorKind::kTimeout);
  CHECK(out.results[0].error.message() == "attempt 2 timed out after 1s");
  CHECK(!out.results[0].output);
  CHECK(f.CountEvents("stuck", "attempt_failed") == 2);

  Fixture g;
  auto quick = std::make_shared<OverrunBody>(&g.clock, 0.5);
  NodeSpec in_time = Node("quick", quick);
  in_time.policy.timeout = 1;
  RunOutcome ok = g.Run(One(in_time));
  CHECK(ok.status == RunStatus::kSucceeded);
  CHECK(ok.results[0].status == NodeStatus::kSucceeded);
}

TEST_CASE("a join that cannot start names itself and why in the run's error" *
          doctest::timeout(30)) {
  Fixture f;
  WorkflowSpec wf;
  wf.name = "jmin";
  wf.nodes = {Node("f1", std::make_shared<ScriptedBody>(std::vector<Status>{Permanent()})),
              Node("f2", std::make_shared<ScriptedBody>(std::vector<Status>{Permanent()}))};
  wf.nodes[0].optional = wf.nodes[1].optional = true;
  NodeSpec j = Node("j", std::make_shared<ConstBody>("0"), {"f1", "f2"});
  j.policy.join.kind = JoinPolicy::Kind::kAny;
  wf.nodes.push_back(j);
  RunOutcome out = f.Run(wf);
  CHECK(out.status == RunStatus::kFailed);
  CHECK(out.results[2].status == NodeStatus::kCancelled);
  CHECK(out.error == "j: cancelled: join any: none of its 2 dependencies succeeded");
}

TEST_CASE("a required failure stays the run's error, not the cancellations it caused" *
          doctest::timeout(30)) {
  Fixture f;
  WorkflowSpec wf;
  wf.name = "chain";
  wf.nodes = {Node("a", std::make_shared<ScriptedBody>(std::vector<Status>{Permanent()})),
              Node("b", std::make_shared<ConstBody>("1"), {"a"})};
  RunOutcome out = f.Run(wf);
  CHECK(out.status == RunStatus::kFailed);
  CHECK(out.error == "a: permanent: bad request");
}

TEST_CASE("resume does not run a node whose every dependent was kept" * doctest::timeout(30)) {
  // fast and slow race into `race` (join any), which feeds `tail`. The earlier
  // attempt kept fast and race; slow never finished (its cancel may or may
  // not have been recorded), tail did not finish.
  for (bool cancel_recorded : {false, true}) {
    CAPTURE(cancel_recorded);
    Fixture f;
    auto slow = std::make_shared<ScriptedBody>(std::vector<Status>{});
    auto tail = std::make_shared<ScriptedBody>(std::vector<Status>{});
    WorkflowSpec wf;
    wf.name = "race";
    wf.nodes = {Node("fast", std::make_shared<ConstBody>("1")), Node("slow", slow)};
    NodeSpec race = Node("race", std::make_shared<ConstBody>("0"), {"fast", "slow"});
    race.policy.join.kind = JoinPolicy::Kind::kAny;
    wf.nodes.push_back(race);
    wf.nodes.push_back(Node("tail", tail, {"race"}));
    // Nothing depends on `lone` and it was not kept: such a node always runs.
    wf.nodes.push_back(Node("lone", std::make_shared<ConstBody>("2")));

    std::unordered_map<std::string, NodeRecord> earlier;
    auto keep = [&](const std::string& node, std::string output) {
      NodeRecord rec;
      rec.node = node;
      rec.status = NodeStatus::kSucceeded;
      rec.attempts = 1;
      rec.output_json = std::move(output);
      earlier[node] = rec;
    };
    keep("fast", "1");
    keep("race", "0");
    NodeRecord loser;
    loser.node = "slow";
    loser.attempts = 1;
    loser.status = NodeStatus::kRunning;
    if (cancel_recorded) {
      loser.status = NodeStatus::kCancelled;
      loser.error_kind = ErrorKind::kCancelled;
      loser.error_message = "not needed: join of 'race' was satisfied without it";
    }
    earlier["slow"] = loser;

    ExecutorOptions opts;
    opts.workers = 2;
    RunOutcome out = f.executor.Run(wf, "r1", MakeJson("{}"), earlier, opts);
    REQUIRE(f.store.Flush().ok());
    CHECK(out.status == RunStatus::kSucceeded);
    CHECK(slow->calls.load() == 0);
    CHECK(tail->calls.load() == 1);
    CHECK(out.results[1].status == NodeStatus::kCancelled);
    CHECK(out.results[1].error.message().starts_with("not needed: "));
    if (cancel_recorded) CHECK(out.results[1].error.message() == loser.error_message);
    CHECK(out.results[4].status == NodeStatus::kSucceeded);
    CHECK(f.CountEvents("slow", "node_cancelled") == 1);
    CHECK(f.CountEvents("slow", "node_started") == 0);
    auto nodes = f.store.GetNodes("r1");
    REQUIRE(nodes.ok());
    bool recorded = false;
    for (const NodeRecord& rec : *nodes) {
      if (rec.node == "slow") recorded = rec.status == NodeStatus::kCancelled;
    }
    CHECK(recorded);
  }
}

TEST_CASE("resume runs an optional failure again even when its dependents were kept" *
          doctest::timeout(30)) {
  Fixture f;
  auto opt = std::make_shared<ScriptedBody>(std::vector<Status>{});
  WorkflowSpec wf;
  wf.name = "degraded";
  wf.nodes = {Node("opt", opt), Node("after", std::make_shared<ConstBody>("1"), {"opt"})};
  wf.nodes[0].optional = true;
  std::unordered_map<std::string, NodeRecord> earlier;
  NodeRecord failed;
  failed.node = "opt";
  failed.status = NodeStatus::kFailed;
  failed.attempts = 1;
  earlier["opt"] = failed;
  NodeRecord kept;
  kept.node = "after";
  kept.status = NodeStatus::kSucceeded;
  kept.output_json = "1";
  earlier["after"] = kept;
  ExecutorOptions opts;
  RunOutcome out = f.executor.Run(wf, "r1", MakeJson("{}"), earlier, opts);
  CHECK(out.status == RunStatus::kSucceeded);
  CHECK(opt->calls.load() == 1);
  CHECK(out.results[0].status == NodeStatus::kSucceeded);
}

}  // namespace keel
