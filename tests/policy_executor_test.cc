// The policy stack through the executor, on a fake clock: retries, timeouts,
// breakers and their probes. Fallbacks, joins, bulkheads, budgets and
// resumes are in policy_join_test.cc.

#include <doctest/doctest.h>

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

}  // namespace


TEST_CASE("retries heal a flaky node after exponential backoff" * doctest::timeout(30)) {
  Fixture f;
  auto body = std::make_shared<ScriptedBody>(std::vector<Status>{Transient(), Transient()});
  NodeSpec n = Node("flaky", body);
  n.policy.retry.attempts = 3;
  n.policy.retry.base = 1;
  n.policy.retry.jitter = Jitter::kNone;
  double elapsed = 0;
  RunOutcome out = f.Run(One(n), &elapsed);
  CHECK(out.status == RunStatus::kSucceeded);
  CHECK(body->calls.load() == 3);
  CHECK(out.attempts[0] == 3);
  CHECK(elapsed == doctest::Approx(3.0));  // 1 s then 2 s
  CHECK(f.CountEvents("flaky", "attempt_failed") == 2);
  CHECK(f.CountEvents("flaky", "retry_scheduled") == 2);
}

TEST_CASE("permanent errors are not retried; Retry-After is a floor" * doctest::timeout(30)) {
  Fixture f;
  auto perm = std::make_shared<ScriptedBody>(std::vector<Status>{Permanent()});
  NodeSpec n = Node("perm", perm);
  n.policy.retry.attempts = 5;
  RunOutcome out = f.Run(One(n));
  CHECK(out.status == RunStatus::kFailed);
  CHECK(perm->calls.load() == 1);
  CHECK(out.error == "perm: permanent: bad request");

  Fixture g;
  auto limited = std::make_shared<ScriptedBody>(
      std::vector<Status>{Status::Error(ErrorKind::kRateLimited, "429", 7.0)});
  NodeSpec m = Node("limited", limited);
  m.policy.retry.attempts = 2;
  m.policy.retry.base = 0.1;
  double elapsed = 0;
  CHECK(g.Run(One(m), &elapsed).status == RunStatus::kSucceeded);
  CHECK(elapsed == doctest::Approx(7.0));
}

TEST_CASE("an attempt timeout stops the attempt and counts as a timeout" * doctest::timeout(30)) {
  Fixture f;
  auto hang = std::make_shared<HangingBody>();
  NodeSpec n = Node("slow", hang);
  n.policy.timeout = 2;
  n.policy.retry.attempts = 2;
  n.policy.retry.base = 1;
  n.policy.retry.jitter = Jitter::kNone;
  double elapsed = 0;
  RunOutcome out = f.Run(One(n), &elapsed);
  CHECK(out.status == RunStatus::kFailed);
  CHECK(hang->calls.load() == 2);
  CHECK(hang->running.load() == 0);
  CHECK(out.results[0].error.kind() == ErrorKind::kTimeout);
  CHECK(out.results[0].error.message() == "attempt 2 timed out after 2s");
  CHECK(elapsed == doctest::Approx(5.0));
}

TEST_CASE("the total timeout bounds attempts and backoff together" * doctest::timeout(30)) {
  Fixture f;
  auto hang = std::make_shared<HangingBody>();
  NodeSpec n = Node("slow", hang);
  n.policy.timeout = 2;
  n.policy.total_timeout = 5;
  n.policy.retry.attempts = 10;
  n.policy.retry.base = 0.5;
  n.policy.retry.jitter = Jitter::kNone;
  double elapsed = 0;
  RunOutcome out = f.Run(One(n), &elapsed);
  CHECK(out.results[0].error.kind() == ErrorKind::kTimeout);
  CHECK(elapsed <= doctest::Approx(5.0));
  CHECK(hang->running.load() == 0);
  CHECK(f.CountEvents("slow", "total_timeout") == 1);
}

TEST_CASE("a breaker opens after consecutive failures and fails fast" * doctest::timeout(30)) {
  Fixture f;
  auto body = std::make_shared<ScriptedBody>(std::vector<Status>(10, Transient()));
  WorkflowSpec wf;
  wf.name = "wf";
  for (int i = 0; i < 4; ++i) {
    NodeSpec n = Node("n" + std::to_string(i), body, i ? std::vector<std::string>{"n" + std::to_string(i - 1)}
                                                       : std::vector<std::string>{});
    n.optional = true;
    n.policy.has_circuit = true;
    n.policy.circuit.key = "dep";
    n.policy.circuit.failures = 2;
    n.policy.circuit.cooldown = 100;
    wf.nodes.push_back(n);
  }
  RunOutcome out = f.Run(wf);
  CHECK(out.status == RunStatus::kDegraded);
  CHECK(body->calls.load() == 2);
  CHECK(out.results[2].error.kind() == ErrorKind::kCircuitOpen);
  CHECK(out.results[3].error.kind() == ErrorKind::kCircuitOpen);
  CHECK(f.CountEvents("n1", "breaker_opened") == 1);
  auto rows = f.store.ListBreakers();
  REQUIRE(rows->size() == 1);
  CHECK(rows->at(0).snapshot.state == BreakerState::kOpen);
}

namespace {

// Succeeds `seconds` after it starts, on a clock timer.
class TimedBody : public NodeBody {
 public:
  TimedBody(Clock* clock, double seconds) : clock_(clock), seconds_(seconds) {}
  void Start(const NodeContext& ctx, NodeCompletion done) override {
    calls.fetch_add(1);
    auto shared = std::make_shared<NodeCompletion>(std::move(done));
    clock_->After(seconds_, [shared] { (*shared)(NodeResult::Success(MakeJson("\"done\""))); });
  }
  std::atomic<int> calls{0};

 private:
  Clock* clock_;
  double seconds_;
};

// Ticks every second for `ticks` seconds, so fake time never jumps further.
class TickerBody : public NodeBody {
 public:
  TickerBody(Clock* clock, int ticks) : clock_(clock), ticks_(ticks) {}
  void Start(const NodeContext& ctx, NodeCompletion done) override {
    calls.fetch_add(1);
    Tick(std::make_shared<NodeCompletion>(std::move(done)), ticks_);
  }
  std::atomic<int> calls{0};

 private:
  void Tick(std::shared_ptr<NodeCompletion> done, int left) {
    if (left == 0) {
      (*done)(NodeResult::Success(MakeJson("0")));
      return;
    }
    clock_->After(1, [this, done, left] { Tick(done, left - 1); });
  }
  Clock* clock_;
  int ticks_;
};

// Breaker "dep" open with its cooldown passed: the next call is a probe.
void SeedHalfOpenReady(Fixture& f) {
  double wall = f.clock.WallNow();
  REQUIRE(f.store
              .UpdateBreaker("dep",
                             [&](BreakerSnapshot& s) {
                               s.state = BreakerState::kOpen;
                               s.opened_at = wall - 10;
                               s.cooldown = 1;
                             })
              .ok());
}

NodeSpec BehindDep(NodeSpec n) {
  n.policy.has_circuit = true;
  n.policy.circuit.key = "dep";
  n.policy.circuit.cooldown = 1;
  n.policy.circuit.probes = 1;
  return n;
}

BreakerSnapshot Dep(Fixture& f) {
  auto rows = f.store.ListBreakers();
  REQUIRE(rows.ok());
  REQUIRE(rows->size() == 1);
  return rows->at(0).snapshot;
}

}  // namespace

TEST_CASE("a probe slower than its lease keeps its slot: the executor renews it" *
          doctest::timeout(60)) {
  Fixture f;
  SeedHalfOpenReady(f);
  WorkflowSpec wf;
  wf.name = "wf";
  // The probe takes 100 s, past the 30 s lease; `later` asks at 60 s.
  auto probe = std::make_shared<TimedBody>(&f.clock, 100);
  auto ticker = std::make_shared<TickerBody>(&f.clock, 110);
  auto wait = std::make_shared<TimedBody>(&f.clock, 60);
  wf.nodes = {BehindDep(Node("probe", probe)), Node("ticker", ticker), Node("wait", wait)};
  NodeSpec later = BehindDep(Node("later", std::make_shared<ConstBody>("1"), {"wait"}));
  later.optional = true;
  wf.nodes.push_back(later);
  // Renewals are posted to the arena: time waits while one is overdue (for
  // 20 real seconds at most, so a renewal that never comes fails the test
  // instead of hanging it, while one late on a loaded machine still comes
  // in time).
  std::optional<std::chrono::steady_clock::time_point> overdue_since;
  f.hold = [&] {
    // Time starts once the probe holds its slot and the ticker and `wait`
    // have started: a clock that ran ahead before the probe's admission
    // would let `later` probe first, and one that ran ahead of the ticker
    // could jump past the probe's end before `wait` even started.
    if (probe->calls.load() == 0 || ticker->calls.load() == 0 || wait->calls.load() == 0) {
      return true;
    }
    BreakerSnapshot s = Dep(f);
    if (s.probes.size() != 1 || f.clock.WallNow() - s.probes[0].renewed_at <= 6) {
      overdue_since.reset();
      return false;
    }
    auto now = std::chrono::steady_clock::now();
    if (!overdue_since) overdue_since = now;
    return now - *overdue_since < std::chrono::seconds(20);
  };
  RunOutcome out = f.Run(wf);
  f.hold = nullptr;
  INFO(out.error);
  INFO(out.results[0].error.ToString());
  CHECK(out.status == RunStatus::kDegraded);
  CHECK(out.results[0].status == NodeStatus::kSucceeded);
  CHECK(out.results[3].error.kind() == ErrorKind::kCircuitOpen);
  CHECK(f.CountEvents("probe", "breaker_half_open") == 1);
  CHECK(f.CountEvents("probe", "breaker_closed") == 1);
  CHECK(f.CountEvents("later", "circuit_rejected") == 1);
  BreakerSnapshot s = Dep(f);
  CHECK(s.state == BreakerState::kClosed);
  CHECK(s.probes.empty());
}

TEST_CASE("a probe abandoned by a join frees its slot" * doctest::timeout(30)) {
  Fixture f;
  SeedHalfOpenReady(f);
  auto hang = std::make_shared<HangingBody>();
  WorkflowSpec wf;
  wf.name = "race";
  wf.nodes = {BehindDep(Node("slow", hang)),
              Node("fast", std::make_shared<TimedBody>(&f.clock, 5))};
  NodeSpec j = Node("first", std::make_shared<ConstBody>("0"), {"slow", "fast"});
  j.policy.join.kind = JoinPolicy::Kind::kAny;
  wf.nodes.push_back(j);
  f.hold = [&] { return hang->calls.load() == 0; };  // the probe starts before fast wins
  RunOutcome out = f.Run(wf);
  f.hold = nullptr;
  CHECK(out.status == RunStatus::kSucceeded);
  CHECK(out.results[0].status == NodeStatus::kCancelled);
  CHECK(f.CountEvents("slow", "breaker_half_open") == 1);
  BreakerSnapshot s = Dep(f);
  CHECK(s.state == BreakerState::kHalfOpen);
  CHECK(s.probes.empty());  // the next call may probe
  CHECK(s.calls == 0);      // an abandoned call is no outcome
}

}  // namespace keel
