// The checkpoint promise as a property: random DAGs run by keel::Runner on a
// SqliteStore whose storage fails on a random schedule (FaultVfs: disk full,
// I/O errors, a lock held elsewhere; for the next N calls, after S calls, for
// a while or until cleared), then resumed without faults until done.
//
// Every execution of a node body produces a unique token and records which
// tokens of its dependencies it consumed. After each step the database is read
// behind the store's back and must show:
//  - the recorded finished set closed under dependencies;
//  - every recorded output produced by one execution of that node, built from
//    the recorded outputs of its dependencies (what it consumed is what is
//    recorded upstream);
//  - a run recorded succeeded only with every node recorded;
//  - event sequence numbers without gaps;
//  - no node recorded finished at an earlier check executed again, and its
//    recorded output unchanged;
// and the run must end succeeded within a bounded number of resumes.

#include <doctest/doctest.h>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "engine/mutex.h"
#include "engine/runner.h"
#include "store/sqlite/sqlite_store.h"
#include "tests/fakes/token_dag.h"
#include "tests/sqlite_test_util.h"
#include "tests/support/fault_vfs.h"
#include "tests/support/sqlite_db.h"

namespace keel {
namespace {

using testing::ConsumedOf;
using testing::Dag;
using testing::Execution;
using testing::FaultOp;
using testing::FaultVfs;
using testing::Ledger;
using testing::MakeDag;
using testing::ScratchDir;
using testing::SqliteDb;
using testing::TokenOf;
using SteadyClock = std::chrono::steady_clock;

constexpr unsigned kSeed = 20261204;
constexpr int kMaxCases = 300;
constexpr double kBudgetSeconds = 55;
constexpr int kMinCases = 30;
constexpr double kStallTimeout = 0.25;

FaultVfs& Vfs() {
  static FaultVfs vfs("keel-property-fault");
  return vfs;
}

const char* OpName(FaultOp op) {
  switch (op) {
    case FaultOp::kWrite:
      return "write";
    case FaultOp::kSync:
      return "sync";
    case FaultOp::kTruncate:
      return "truncate";
    case FaultOp::kWriteLock:
      return "write lock";
  }
  return "?";
}

// A random fault schedule for one step: plans on the VFS set before the step,
// and maybe a window of "fail everything" in real time during it.
struct Schedule {
  struct Plan {
    FaultOp op;
    int error;
    uint32_t count;
    uint32_t skip;
  };
  std::vector<Plan> plans;
  bool window = false;
  int window_start_ms = 0;
  int window_ms = 0;
  FaultOp window_op = FaultOp::kWrite;
  int window_error = SQLITE_FULL;

  std::string Describe() const {
    std::ostringstream out;
    for (const Plan& p : plans) {
      out << OpName(p.op) << " error " << p.error << " count "
          << (p.count == FaultVfs::kForever ? std::string("forever") : std::to_string(p.count))
          << " skip " << p.skip << "; ";
    }
    if (window) {
      out << "window: " << OpName(window_op) << " error " << window_error << " at "
          << window_start_ms << " ms for " << window_ms << " ms";
    }
    return out.str();
  }
};

void PickFault(std::mt19937& rng, FaultOp* op, int* error) {
  switch (rng() % 5) {
    case 0:
      *op = FaultOp::kWrite;
      *error = SQLITE_FULL;
      break;
    case 1:
      *op = FaultOp::kWrite;
      *error = SQLITE_IOERR_WRITE;
      break;
    case 2:
      *op = FaultOp::kWriteLock;
      *error = SQLITE_BUSY;
      break;
    case 3:
      *op = FaultOp::kSync;
      *error = SQLITE_IOERR_FSYNC;
      break;
    default:
      *op = FaultOp::kTruncate;
      *error = SQLITE_IOERR_TRUNCATE;
      break;
  }
}

Schedule MakeSchedule(std::mt19937& rng) {
  Schedule s;
  const int plans = static_cast<int>(rng() % 3);
  std::set<int> used;
  for (int i = 0; i < plans; ++i) {
    Schedule::Plan p;
    PickFault(rng, &p.op, &p.error);
    if (!used.insert(static_cast<int>(p.op)).second) continue;
    p.count = rng() % 8 == 0 ? FaultVfs::kForever : 1 + static_cast<uint32_t>(rng() % 6);
    p.skip = static_cast<uint32_t>(rng() % 12);
    s.plans.push_back(p);
  }
  if (s.plans.empty() || rng() % 3 == 0) {
    s.window = true;
    s.window_start_ms = static_cast<int>(rng() % 20);
    s.window_ms =
        rng() % 4 == 0 ? 300 + static_cast<int>(rng() % 200) : 5 + static_cast<int>(rng() % 120);
    PickFault(rng, &s.window_op, &s.window_error);
  }
  return s;
}

// Applies a schedule's window from a thread of its own while a step runs.
class Window {
 public:
  explicit Window(const Schedule& s) {
    if (!s.window) return;
    thread_ = std::thread([this, s] {
      if (Sleep(s.window_start_ms)) return;
      Vfs().FailAlways(s.window_op, s.window_error);
      Sleep(s.window_ms);
      Vfs().Clear(s.window_op);
    });
  }
  ~Window() {
    {
      MutexLock lock(&mu_);
      stop_ = true;
    }
    cv_.SignalAll();
    if (thread_.joinable()) thread_.join();
  }

 private:
  // Waits `ms`; true when told to stop first.
  bool Sleep(int ms) {
    MutexLock lock(&mu_);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (!stop_ && cv_.WaitUntil(&mu_, deadline)) {
    }
    return stop_;
  }
  Mutex mu_;
  CondVar cv_;
  bool stop_ GUARDED_BY(mu_) = false;
  std::thread thread_;
};

// What the database says about the case's run.
struct Recorded {
  bool exists = false;
  std::string id;
  std::string status;
  std::map<std::string, std::string> node_status;
  std::map<std::string, std::string> output;  // of nodes recorded succeeded
  std::vector<int64_t> seqs;
  std::set<std::string> success_events;  // nodes with a node_succeeded event
  std::string last_event;                // kind of the newest event
  std::string last_event_data;           // and its data
};

Recorded Read(const std::string& path) {
  Recorded r;
  if (!std::filesystem::exists(path)) return r;
  SqliteDb db(path, /*create=*/false);
  auto runs = db.Query("SELECT id, status FROM runs");
  REQUIRE(runs.size() <= 1);
  if (runs.empty()) return r;
  r.exists = true;
  r.id = runs[0][0];
  r.status = runs[0][1];
  for (const auto& row :
       db.Query("SELECT node, status, output_json FROM nodes WHERE run_id = ?1", {r.id})) {
    r.node_status[row[0]] = row[1];
    if (row[1] == "succeeded") r.output[row[0]] = row[2];
  }
  for (const auto& row :
       db.Query("SELECT node FROM events WHERE run_id = ?1 AND kind = 'node_succeeded'", {r.id})) {
    r.success_events.insert(row[0]);
  }
  for (const auto& row :
       db.Query("SELECT seq, kind, data_json FROM events WHERE run_id = ?1 ORDER BY seq", {r.id})) {
    r.seqs.push_back(std::stoll(row[0]));
    r.last_event = row[1];
    r.last_event_data = row[2];
  }
  return r;
}

// Checks the invariants on `r`; `frozen` holds, for nodes recorded at an
// earlier check, their token and how often they had executed then.
void Check(const Dag& dag, const Recorded& r, const std::vector<Execution>& log,
           std::map<std::string, std::pair<std::string, int>>* frozen) {
  if (!r.exists) {
    CHECK(frozen->empty());
    return;
  }
  std::map<std::string, std::string> node_of_token;
  std::map<std::string, int> executions;
  for (const Execution& e : log) {
    node_of_token[e.token] = e.node;
    ++executions[e.node];
  }
  for (const auto& entry : r.node_status) {
    const std::string& node = entry.first;
    const std::string& status = entry.second;
    CAPTURE(node);
    CHECK(dag.deps.count(node) == 1);
    CHECK(status != "skipped");
    CHECK(status != "fallback");
  }
  for (const auto& entry : r.output) {
    const std::string& node = entry.first;
    const std::string& out = entry.second;
    CAPTURE(node);
    CAPTURE(out);
    const std::string token = TokenOf(out);
    REQUIRE_MESSAGE(node_of_token.count(token) == 1, "recorded output from no execution");
    CHECK_MESSAGE(r.success_events.count(node) == 1,
                  "a node recorded succeeded has no node_succeeded event");
    CHECK(node_of_token[token] == node);
    const std::vector<std::string>& deps = dag.deps.at(node);
    std::vector<std::string> consumed = ConsumedOf(out);
    REQUIRE(consumed.size() == deps.size());
    for (size_t i = 0; i < deps.size(); ++i) {
      CAPTURE(deps[i]);
      REQUIRE_MESSAGE(r.output.count(deps[i]) == 1,
                      "recorded finished set is not closed under dependencies");
      CHECK_MESSAGE(TokenOf(r.output.at(deps[i])) == consumed[i],
                    "a node consumed an output that is not the one recorded upstream");
    }
  }
  if (r.status == "succeeded") {
    CHECK_MESSAGE(r.output.size() == dag.deps.size(), "run succeeded without every node recorded");
    CHECK(r.last_event == "run_finished");
    CHECK(r.last_event_data.find("\"succeeded\"") != std::string::npos);
  }
  for (size_t i = 0; i < r.seqs.size(); ++i) {
    if (r.seqs[i] != static_cast<int64_t>(i) + 1) {
      FAIL_CHECK("event sequence has a gap at " << i + 1 << " (found " << r.seqs[i] << ")");
      break;
    }
  }
  for (const auto& entry : *frozen) {
    const std::string& node = entry.first;
    const auto& was = entry.second;
    CAPTURE(node);
    REQUIRE_MESSAGE(r.output.count(node) == 1, "a node recorded finished lost its record");
    CHECK_MESSAGE(TokenOf(r.output.at(node)) == was.first, "a recorded output changed");
    CHECK_MESSAGE(executions[node] == was.second, "a node recorded finished executed again");
  }
  for (const auto& [node, out] : r.output) (*frozen)[node] = {TokenOf(out), executions[node]};
}

std::unique_ptr<SqliteStore> OpenStore(const std::string& path, bool full) {
  SqliteStoreOptions options;
  options.vfs = Vfs().name();
  options.stall_timeout = kStallTimeout;
  options.busy_timeout = 0.02;
  options.durability = full ? SqliteDurability::kFull : SqliteDurability::kNormal;
  auto store = SqliteStore::Open(path, options);
  REQUIRE_MESSAGE(store.ok(), store.status().ToString());
  return std::move(store).value();
}

struct CaseStats {
  int steps = 0;
  int storage_errors = 0;
  int64_t faults = 0;
};

void RunCase(unsigned seed, CaseStats* stats) {
  std::mt19937 rng(seed);
  ScratchDir dir;
  const std::string path = dir.Path("keel.db");
  Ledger ledger;
  Dag dag = MakeDag(rng, &ledger);
  const bool full = rng() % 3 == 0;
  ExecutorOptions options;
  options.workers = 1 + static_cast<int>(rng() % 4);
  const int faulty_steps = 1 + static_cast<int>(rng() % 2);
  const ScriptInfo script{"/tmp/prop.lua", "00", "return nil", {}};
  CAPTURE(seed);
  CAPTURE(dag.spec.nodes.size());
  CAPTURE(options.workers);
  CAPTURE(full);

  std::map<std::string, std::pair<std::string, int>> frozen;
  constexpr int kMaxSteps = 8;
  for (int step = 0; step < kMaxSteps; ++step) {
    CAPTURE(step);
    ledger.SetStep(step);
    Vfs().ClearAll();
    Recorded before = Read(path);
    Schedule schedule;
    if (step < faulty_steps) schedule = MakeSchedule(rng);
    std::string described = schedule.Describe();
    CAPTURE(described);
    ++stats->steps;
    bool reported_success = false;
    {
      auto store = OpenStore(path, full);
      Vfs().ResetCounters();
      for (const auto& p : schedule.plans)
        Vfs().Fail(p.op, p.error, p.count, testing::kAnyFile, p.skip);
      Result<RunReport> report = Status::Error(ErrorKind::kPermanent, "not run");
      {
        Window window(schedule);
        Runner runner(SystemClock(), store.get(), nullptr);
        if (!before.exists) {
          report = runner.Start(dag.spec, script, MakeJson("{}"), options);
        } else {
          auto run = store->GetRun(before.id);
          REQUIRE_MESSAGE(run.ok(), run.status().ToString());
          report = runner.Resume(*run, dag.spec, script, options);
        }
      }
      stats->faults += Vfs().TotalInjected();
      if (!report.ok()) ++stats->storage_errors;
      reported_success = report.ok() && report->status == RunStatus::kSucceeded;
      // As the process leaves it, while storage may still be failing.
      Check(dag, Read(path), ledger.Snapshot(), &frozen);
      Vfs().ClearAll();
    }  // the store commits what it still holds, then closes
    Recorded after = Read(path);
    Check(dag, after, ledger.Snapshot(), &frozen);
    if (reported_success) {
      CHECK_MESSAGE(after.status == "succeeded", "the runner reported success the store lacks");
    }
    if (after.exists && after.status == "succeeded") {
      CHECK(after.output.size() == dag.deps.size());
      return;
    }
    if (after.exists) {
      // The process that ran this step is gone: its owner record now names a
      // process that has ended (same pid, another start time).
      SqliteDb(path, false).Exec("UPDATE runs SET owner_start = owner_start + 1000000007");
    }
  }
  Recorded last = Read(path);
  FAIL("the run did not finish within " << kMaxSteps << " steps; status " << last.status << ", "
                                        << last.output.size() << " of " << dag.deps.size()
                                        << " nodes recorded");
}

}  // namespace

TEST_CASE("random DAGs under random storage faults keep the checkpoint promise" *
          doctest::timeout(150)) {
  const auto start = SteadyClock::now();
  CaseStats stats;
  int cases = 0;
  while (cases < kMaxCases &&
         std::chrono::duration<double>(SteadyClock::now() - start).count() < kBudgetSeconds) {
    RunCase(kSeed + static_cast<unsigned>(cases), &stats);
    ++cases;
  }
  MESSAGE(cases << " cases, " << stats.steps << " steps, " << stats.storage_errors
                << " steps ended by an error, " << stats.faults << " faults injected, "
                << std::chrono::duration<double>(SteadyClock::now() - start).count() << " s");
  CHECK(cases >= kMinCases);
  CHECK(stats.faults > 0);
}

}  // namespace keel
