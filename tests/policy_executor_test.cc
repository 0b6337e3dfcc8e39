// The policy stack through the executor, on a fake clock: retries, timeouts,
// breakers, fallbacks, joins, bulkheads, budgets.

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <optional>
#include <thread>

#include "engine/executor.h"
#include "engine/fake_clock.h"
#include "tests/fakes/memory_store.h"

namespace keel {
namespace {

using testing::MemoryStore;

// Fails with the given statuses in turn, then succeeds with "ok".
class ScriptedBody : public NodeBody {
 public:
  explicit ScriptedBody(std::vector<Status> failures) : failures_(std::move(failures)) {}
  void Start(const NodeContext& ctx, NodeCompletion done) override {
    int n = calls.fetch_add(1);
    if (n < static_cast<int>(failures_.size())) {
      done(NodeResult::Failure(failures_[n]));
    } else {
      done(NodeResult::Success(MakeJson("\"ok\"")));
    }
  }
  std::atomic<int> calls{0};

 private:
  std::vector<Status> failures_;
};

// Never finishes on its own: completes as cancelled when its token fires.
class HangingBody : public NodeBody {
 public:
  void Start(const NodeContext& ctx, NodeCompletion done) override {
    int now = running.fetch_add(1) + 1;
    int seen = peak.load();
    while (now > seen && !peak.compare_exchange_weak(seen, now)) {
    }
    calls.fetch_add(1);
    auto shared = std::make_shared<NodeCompletion>(std::move(done));
    ctx.cancel->Subscribe([this, shared] {
      running.fetch_sub(1);
      (*shared)(NodeResult{NodeStatus::kCancelled, nullptr,
                           Status::Error(ErrorKind::kCancelled, "stopped")});
    });
  }
  std::atomic<int> calls{0}, running{0}, peak{0};
};

class ConstBody : public NodeBody {
 public:
  explicit ConstBody(std::string json) : json_(std::move(json)) {}
  void Start(const NodeContext& ctx, NodeCompletion done) override {
    std::string deps = "{";
    for (auto& [name, out] : ctx.deps) deps += (deps.size() > 1 ? ",\"" : "\"") + name + "\":" + *out;
    deps += "}";
    std::string failed = "[";
    for (auto& f : ctx.failed) failed += (failed.size() > 1 ? ",\"" : "\"") + f + "\"";
    failed += "]";
    std::string failure = ctx.failure ? *ctx.failure : "null";
    done(NodeResult::Success(MakeJson("{\"v\":" + json_ + ",\"deps\":" + deps +
                                      ",\"failed\":" + failed + ",\"failure\":" + failure +
                                      "}")));
  }

 private:
  std::string json_;
};

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

Status Transient() { return Status::Error(ErrorKind::kTransient, "flaky"); }
Status Permanent() { return Status::Error(ErrorKind::kPermanent, "bad request"); }

NodeSpec Node(std::string name, std::shared_ptr<NodeBody> body, std::vector<std::string> after = {}) {
  NodeSpec n;
  n.name = std::move(name);
  n.body = std::move(body);
  n.after = std::move(after);
  n.policy.retry.attempts = 1;
  return n;
}

struct Fixture {
  FakeClock clock{0.0};
  MemoryStore store;
  Executor executor{&clock, &store, nullptr};
  std::vector<WorkflowSpec> library;
  // While set and true, Run fires no timer: lets a test see work start
  // before fake time jumps past it.
  std::function<bool()> hold;

  // Runs on another thread while this one fires timers as they come due,
  // jumping the fake clock; returns the outcome and the fake time it took.
  RunOutcome Run(const WorkflowSpec& wf, double* elapsed = nullptr, int workers = 2,
                 int max_inflight = 0) {
    ExecutorOptions opts;
    opts.workers = workers;
    opts.max_inflight = max_inflight;
    opts.library = &library;
    double start = clock.Now();
    auto fut = std::async(std::launch::async, [&] {
      return executor.Run(wf, "r1", MakeJson("{}"), {}, opts);
    });
    while (fut.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
      if ((hold && hold()) || !clock.RunNext()) std::this_thread::yield();
    }
    if (elapsed) *elapsed = clock.Now() - start;
    REQUIRE(store.Flush().ok());
    return fut.get();
  }
  int CountEvents(const std::string& node, const std::string& kind) {
    int n = 0;
    auto events = store.GetEvents("r1");
    for (auto& e : *events) n += (e.node == node && e.kind == kind) ? 1 : 0;
    return n;
  }
};

WorkflowSpec One(NodeSpec n) {
  WorkflowSpec wf;
  wf.name = "wf";
  wf.nodes.push_back(std::move(n));
  return wf;
}

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
    Tick(std::make_shared<NodeCompletion>(std::move(done)), ticks_);
  }

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
  wf.nodes = {BehindDep(Node("probe", probe)),
              Node("ticker", std::make_shared<TickerBody>(&f.clock, 110)),
              Node("wait", std::make_shared<TimedBody>(&f.clock, 60))};
  NodeSpec later = BehindDep(Node("later", std::make_shared<ConstBody>("1"), {"wait"}));
  later.optional = true;
  wf.nodes.push_back(later);
  // Renewals are posted to the arena: time waits while one is overdue (for
  // a few real seconds at most, so a renewal that never comes fails the test
  // instead of hanging it).
  std::optional<std::chrono::steady_clock::time_point> overdue_since;
  f.hold = [&] {
    // Time starts once the probe holds its slot: a clock that ran ahead
    // before its admission would let `later` probe first.
    if (probe->calls.load() == 0) return true;
    BreakerSnapshot s = Dep(f);
    if (s.probes.size() != 1 || f.clock.WallNow() - s.probes[0].renewed_at <= 6) {
      overdue_since.reset();
      return false;
    }
    auto now = std::chrono::steady_clock::now();
    if (!overdue_since) overdue_since = now;
    return now - *overdue_since < std::chrono::seconds(3);
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
