// Policy overhead: what retry + breaker + timeout add around a no-op node,
// what sharing breaker state through the SQLite store costs per call, and
// proof that backoff waits hold no worker (1,000 nodes failing twice).
//
//   policy_bench            full run
//   policy_bench --quick    fewer iterations (a smoke test for ctest)

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>

#include "engine/breaker_registry.h"
#include "engine/clock.h"
#include "engine/executor.h"
#include "store/sqlite/sqlite_store.h"

namespace keel::bench {
namespace {

namespace fs = std::filesystem;
using Clock_ = std::chrono::steady_clock;

double Since(Clock_::time_point t) { return std::chrono::duration<double>(Clock_::now() - t).count(); }

// Succeeds at once; stops itself at its deadline, so no timer is armed.
class NoopBody final : public NodeBody {
 public:
  void Start(const NodeContext&, NodeCompletion done) override {
    static const JsonText kNull = MakeJson("null");
    done(NodeResult::Success(kNull));
  }
  bool EnforcesDeadline() const override { return true; }
};

// Fails its first two attempts with a transient error.
class TwiceFlakyBody final : public NodeBody {
 public:
  void Start(const NodeContext& ctx, NodeCompletion done) override {
    if (ctx.attempt <= 2) {
      done(NodeResult::Failure(Status::Error(ErrorKind::kTransient, "flaky")));
    } else {
      done(NodeResult::Success(MakeJson("null")));
    }
  }
};

WorkflowSpec Independent(int n, std::shared_ptr<NodeBody> body, const NodePolicy& policy) {
  WorkflowSpec wf;
  wf.name = "bench";
  wf.nodes.reserve(n);
  for (int i = 0; i < n; ++i) {
    NodeSpec node;
    node.name = "n" + std::to_string(i);
    node.body = body;
    node.policy = policy;
    if (node.policy.circuit.key.empty()) node.policy.circuit.key = "svc";
    node.policy.bulkhead_key = node.policy.circuit.key;
    wf.nodes.push_back(std::move(node));
  }
  return wf;
}

double RunSeconds(const WorkflowSpec& wf, int workers) {
  Executor executor(SystemClock(), nullptr, nullptr);
  ExecutorOptions opts;
  opts.workers = workers;
  auto start = Clock_::now();
  RunOutcome out = executor.Run(wf, "bench", MakeJson("{}"), {}, opts);
  double secs = Since(start);
  if (out.status != RunStatus::kSucceeded) {
    std::fprintf(stderr, "run failed: %s\n", out.error.c_str());
    std::exit(1);
  }
  return secs;
}

NodePolicy HappyPathPolicy() {
  NodePolicy p;
  p.retry.attempts = 3;
  p.timeout = 30;
  p.has_circuit = true;
  p.circuit.key = "svc";
  return p;
}

void ExecutorOverhead(int n) {
  auto body = std::make_shared<NoopBody>();
  WorkflowSpec bare = Independent(n, body, NodePolicy{});
  WorkflowSpec wrapped = Independent(n, body, HappyPathPolicy());
  double best_bare = 1e9, best_wrapped = 1e9;
  for (int rep = 0; rep < 5; ++rep) {
    best_bare = std::min(best_bare, RunSeconds(bare, 1));
    best_wrapped = std::min(best_wrapped, RunSeconds(wrapped, 1));
  }
  std::printf("executor, %d no-op nodes on 1 worker: bare %.0f ns/node, with retry+breaker+timeout "
              "%.0f ns/node -> %.0f ns added per node\n",
              n, best_bare / n * 1e9, best_wrapped / n * 1e9, (best_wrapped - best_bare) / n * 1e9);
}

// The decisions the policy stack makes per call on the happy path, without
// the executor around them: breaker admit + record, retry classification,
// deadline arithmetic.
void PrimitiveOverhead(int calls) {
  NoopBody body;
  NodeContext ctx;
  std::atomic<int> sink{0};
  NodeCompletion done = [&sink](NodeResult r) { sink += r.status == NodeStatus::kSucceeded; };
  NodeBody* dispatch = &body;
  auto t0 = Clock_::now();
  for (int i = 0; i < calls; ++i) dispatch->Start(ctx, done);
  double bare = Since(t0);
  BreakerRegistry breakers(nullptr);
  NodePolicy policy = HappyPathPolicy();
  Clock* clock = SystemClock();
  t0 = Clock_::now();
  for (int i = 0; i < calls; ++i) {
    auto d = breakers.Admit(policy.circuit, 0);
    ctx.deadline = clock->Now() + policy.timeout;
    dispatch->Start(ctx, done);
    breakers.Record(policy.circuit, true, d.probe, 0);
    if (!policy.retry.Retries(ErrorKind::kNone)) sink += 0;
  }
  double wrapped = Since(t0);
  std::printf("policy decisions per call (in-memory breaker): bare call %.0f ns, wrapped %.0f ns "
              "-> %.0f ns added (target < 200 ns)\n",
              bare / calls * 1e9, wrapped / calls * 1e9, (wrapped - bare) / calls * 1e9);
}

// The in-memory breaker alone on its success path (registry admit + record
// of a successful call), for `config`.
void BreakerSuccessPath(const char* label, const BreakerConfig& config, int calls) {
  BreakerRegistry breakers(nullptr);
  double best = 1e9;
  for (int round = 0; round < 3; ++round) {
    auto t0 = Clock_::now();
    for (int i = 0; i < calls; ++i) {
      double now = i * 1e-3;
      auto d = breakers.Admit(config, now);
      breakers.Record(config, true, d.probe, now);
    }
    best = std::min(best, Since(t0));
  }
  std::printf("in-memory breaker success path, %s: %.0f ns per call (target < 100 ns)\n", label,
              best / calls * 1e9);
}

void SharedBreakerCost(int calls) {
  fs::path dir = fs::temp_directory_path() / ("keel-policy-bench-" + std::to_string(getpid()));
  fs::create_directories(dir);
  {
    auto store = SqliteStore::Open((dir / "b.db").string(), SqliteStoreOptions{});
    if (!store.ok()) {
      std::fprintf(stderr, "store: %s\n", store.status().message().c_str());
      std::exit(1);
    }
    BreakerRegistry shared(store->get());
    BreakerConfig config;
    config.key = "svc";
    auto t0 = Clock_::now();
    for (int i = 0; i < calls; ++i) {
      auto d = shared.Admit(config, 0);
      shared.Record(config, true, d.probe, 0);
    }
    double secs = Since(t0);
    std::printf("breaker shared through the SQLite store: %.1f us per call (admit + record, two "
                "transactions)\n",
                secs / calls * 1e6);
  }
  fs::remove_all(dir);
}

void BackoffHoldsNoWorker(int n) {
  NodePolicy p;
  p.retry.attempts = 3;
  p.retry.base = 0.010;
  p.retry.factor = 2;
  p.retry.jitter = Jitter::kNone;
  WorkflowSpec wf = Independent(n, std::make_shared<TwiceFlakyBody>(), p);
  double backoff = p.retry.base + p.retry.base * p.retry.factor;  // 10 ms + 20 ms
  double secs = RunSeconds(wf, 2);
  std::printf("%d nodes failing twice, 10 ms base backoff, 2 workers: %.3f s = %.2fx the backoff "
              "of one node (%.0f ms); sleeping workers would need %.1f s\n",
              n, secs, secs / backoff, backoff * 1e3, n * backoff / 2);
}

}  // namespace
}  // namespace keel::bench

int main(int argc, char** argv) {
  bool quick = argc == 2 && std::strcmp(argv[1], "--quick") == 0;
  keel::bench::PrimitiveOverhead(quick ? 100000 : 5000000);
  keel::bench::ExecutorOverhead(quick ? 2000 : 50000);
  {
    const int calls = quick ? 100000 : 2000000;
    keel::BreakerConfig config;
    config.key = "k";
    keel::bench::BreakerSuccessPath("consecutive failures", config, calls);
    config.failure_rate = 0.5;
    keel::bench::BreakerSuccessPath("failure rate over 60 s", config, calls);
    config.window_calls = 100;
    config.slow_seconds = 5;
    config.slow_rate = 0.5;
    config.adaptive = true;
    config.ramp = 60;
    keel::bench::BreakerSuccessPath("last 100 calls, slow calls, adaptive, ramp", config, calls);
  }
  keel::bench::SharedBreakerCost(quick ? 200 : 2000);
  keel::bench::BackoffHoldsNoWorker(1000);
  return 0;
}
