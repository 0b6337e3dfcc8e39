// keel::Runner on a SqliteStore whose storage fails (FaultVfs) or whose run
// is taken over by another store: the run stops soon, Runner returns an
// error naming the cause, nothing is recorded out of order or after the
// takeover, and (for storage faults) Runner::Resume finishes the run once the
// storage is back, without running a recorded node again.

#include <doctest/doctest.h>
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "engine/mutex.h"
#include "engine/process_owner.h"
#include "engine/runner.h"
#include "store/sqlite/sqlite_store.h"
#include "tests/sqlite_test_util.h"
#include "tests/support/fault_vfs.h"
#include "tests/support/sqlite_db.h"

namespace keel {
namespace {

using testing::FaultOp;
using testing::FaultVfs;
using testing::ScratchDir;
using testing::SqliteDb;

constexpr int kTimeoutS = 60;
constexpr int kChain = 150;

FaultVfs& Vfs() {
  static FaultVfs vfs("keel-runner-fault");
  return vfs;
}

// Counts its executions per node, works 10 ms, returns its index.
class CountingBody : public NodeBody {
 public:
  CountingBody(int index, Mutex* mu, std::map<std::string, int>* runs)
      : index_(index), mu_(mu), runs_(runs) {}
  void Start(const NodeContext& ctx, NodeCompletion done) override {
    {
      MutexLock lock(mu_);
      ++(*runs_)[ctx.node];
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    done(NodeResult::Success(MakeJson(std::to_string(index_))));
  }

 private:
  const int index_;
  Mutex* const mu_;
  std::map<std::string, int>* const runs_ PT_GUARDED_BY(mu_);
};

struct Chain {
  Mutex mu;
  std::map<std::string, int> runs GUARDED_BY(mu);
  WorkflowSpec spec;

  Chain() {
    spec.name = "chain";
    for (int i = 1; i <= kChain; ++i) {
      NodeSpec node;
      node.name = "n" + std::to_string(i);
      if (i > 1) node.after = {"n" + std::to_string(i - 1)};
      node.body = std::make_shared<CountingBody>(i, &mu, &runs);
      spec.nodes.push_back(std::move(node));
    }
  }
  int Executions() {
    MutexLock lock(&mu);
    int total = 0;
    for (const auto& [node, n] : runs) total += n;
    return total;
  }
  std::map<std::string, int> Runs() {
    MutexLock lock(&mu);
    return runs;
  }
};

std::unique_ptr<SqliteStore> OpenStore(const std::string& path, double stall_timeout) {
  SqliteStoreOptions options;
  options.vfs = Vfs().name();
  options.stall_timeout = stall_timeout;
  options.busy_timeout = 0.05;
  auto store = SqliteStore::Open(path, options);
  REQUIRE_MESSAGE(store.ok(), store.status().ToString());
  return std::move(store).value();
}

// Nodes recorded succeeded, read behind the store's back.
std::vector<std::string> Recorded(const std::string& path) {
  std::vector<std::string> nodes;
  for (const auto& row :
       SqliteDb(path, false)
           .Query(
               "SELECT node FROM nodes WHERE status = 'succeeded' ORDER BY CAST(substr(node, 2) AS "
               "INTEGER)")) {
    nodes.push_back(row[0]);
  }
  return nodes;
}

void CheckChainPrefix(const std::vector<std::string>& recorded) {
  for (size_t i = 0; i < recorded.size(); ++i) {
    CHECK(recorded[i] == "n" + std::to_string(i + 1));
  }
}

std::string OnlyRunId(const std::string& path) {
  auto rows = SqliteDb(path, false).Query("SELECT id FROM runs");
  REQUIRE(rows.size() == 1);
  return rows[0][0];
}

const ScriptInfo kScript{"/tmp/chain.lua", "00", "return nil", {}};

}  // namespace

TEST_CASE("storage failing past the stall timeout stops the run; Resume finishes it" *
          doctest::timeout(kTimeoutS)) {
  Vfs().ClearAll();
  ScratchDir dir;
  const std::string path = dir.Path("keel.db");
  Chain chain;
  ExecutorOptions options;
  options.workers = 2;
  constexpr double kStall = 0.5;
  {
    auto store = OpenStore(path, kStall);
    Runner runner(SystemClock(), store.get(), nullptr);
    auto run = std::async(std::launch::async, [&] {
      return runner.Start(chain.spec, kScript, MakeJson("{}"), options);
    });
    while (chain.Executions() < 10) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    Vfs().FailAlways(FaultOp::kWrite, SQLITE_FULL);
    const auto failed_at = std::chrono::steady_clock::now();
    const int at_fault = chain.Executions();
    REQUIRE(run.wait_for(std::chrono::seconds(20)) == std::future_status::ready);
    const double stopped_after =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - failed_at).count();
    auto report = run.get();
    const int ahead = chain.Executions() - at_fault;
    MESSAGE("stopped " << stopped_after << " s after the disk filled; " << ahead
                       << " nodes ran meanwhile");
    REQUIRE_FALSE(report.ok());
    CHECK(report.status().message().find("database or disk is full") != std::string::npos);
    CHECK(stopped_after < kStall + 3);
    // 10 ms a node: the stall timeout bounds how far execution runs ahead.
    CHECK(ahead <= static_cast<int>((stopped_after + 0.2) / 0.010) + 2);
    CHECK(chain.Executions() < kChain);
    CHECK_FALSE(store->WriteHealth().ok());
    Vfs().ClearAll();
  }
  const std::vector<std::string> before = Recorded(path);
  CheckChainPrefix(before);
  CHECK(before.size() < static_cast<size_t>(kChain));
  const std::string id = OnlyRunId(path);
  // The process is gone: its owner record now names one that has ended.
  SqliteDb(path, false).Exec("UPDATE runs SET owner_start = owner_start + 1000000007");

  auto store = OpenStore(path, kStall);
  Runner runner(SystemClock(), store.get(), nullptr);
  auto run = store->GetRun(id);
  REQUIRE(run.ok());
  auto report = runner.Resume(*run, chain.spec, kScript, options);
  REQUIRE_MESSAGE(report.ok(), report.status().ToString());
  CHECK(report->status == RunStatus::kSucceeded);
  CHECK(report->restored == static_cast<int>(before.size()));
  const std::vector<std::string> after = Recorded(path);
  CHECK(after.size() == static_cast<size_t>(kChain));
  CheckChainPrefix(after);
  auto runs = chain.Runs();
  for (const std::string& node : before) {
    CAPTURE(node);
    CHECK(runs[node] == 1);
  }
}

TEST_CASE("a run taken over by another store stops at once and records nothing more" *
          doctest::timeout(kTimeoutS)) {
  Vfs().ClearAll();
  ScratchDir dir;
  const std::string path = dir.Path("keel.db");
  Chain chain;
  ExecutorOptions options;
  options.workers = 2;
  auto store = OpenStore(path, /*stall_timeout=*/30);
  auto other = OpenStore(path, /*stall_timeout=*/30);
  Runner runner(SystemClock(), store.get(), nullptr);
  auto run = std::async(std::launch::async,
                        [&] { return runner.Start(chain.spec, kScript, MakeJson("{}"), options); });
  while (Recorded(path).size() < 10) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const std::string id = OnlyRunId(path);
  auto recorded = other->GetRun(id);
  REQUIRE(recorded.ok());
  RunRecord claim = *recorded;
  claim.owner = CurrentOwner();
  auto taken = other->ClaimRun(claim, recorded->epoch, [](const Owner&, double) { return false; });
  REQUIRE_MESSAGE(taken.ok(), taken.status().ToString());
  const auto taken_at = std::chrono::steady_clock::now();
  const std::vector<std::string> at_takeover = Recorded(path);

  REQUIRE(run.wait_for(std::chrono::seconds(20)) == std::future_status::ready);
  const double stopped_after =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - taken_at).count();
  auto report = run.get();
  MESSAGE("stopped " << stopped_after << " s after the takeover");
  REQUIRE_FALSE(report.ok());
  CHECK(report.status().kind() == ErrorKind::kPermanent);
  CHECK(report.status().message().find("taken over") != std::string::npos);
  CHECK(stopped_after < 2);
  CHECK(chain.Executions() < kChain);
  // Nothing the first store queued after the takeover was committed.
  CHECK(Recorded(path) == at_takeover);
  auto now = other->GetRun(id);
  REQUIRE(now.ok());
  CHECK(now->epoch == taken->epoch);
  CHECK(now->status == RunStatus::kRunning);
  CHECK(now->owner.pid == claim.owner.pid);
}

}  // namespace keel
