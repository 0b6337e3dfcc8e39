// Two `keel resume` of one dead run started together, 100 times: claims are
// fenced, so exactly one takes the run; the other stops with a clear message
// (exit 2) and records nothing, or (if it came after the winner finished)
// says there is nothing to resume. No node runs twice, and the database ends
// with the run succeeded and every node recorded once.
//
// The dead run is made once (kill -9 after its first node is recorded, while
// its 11 fan-out nodes wait) and copied for each trial.

#include <doctest/doctest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/files.h"
#include "tests/support/keel_cli.h"
#include "tests/support/sandbox.h"
#include "tests/support/sqlite_db.h"

namespace keel::testing {
namespace {

constexpr int kTrials = 100;
constexpr int kFanOut = 11;
constexpr auto kWait = std::chrono::seconds(30);

// a, then f1..f11 after it. Each execution appends "NODE PID" to the log; the
// fan-out waits for the go-file, so the first run can be killed while all 11
// are pending.
std::string Script(const Sandbox& box) {
  return R"lua(local keel = require "keel"
local LOG, GO = ")lua" +
         box.Path("log") + R"lua(", ")lua" + box.Path("go") + R"lua("
local function pid()
  local f = assert(io.open("/proc/self/stat", "r"))
  local p = f:read("n")
  f:close()
  return p
end
local function log(name)
  local f = assert(io.open(LOG, "a"))
  f:write(name, " ", pid(), "\n")
  f:close()
end
local function exists(path)
  local f = io.open(path, "r")
  if f then f:close() return true end
  return false
end
local nodes = { keel.fn "a" { run = function() log("a") return 1 end } }
for i = 1, )lua" +
         std::to_string(kFanOut) +
         R"lua( do
  nodes[#nodes + 1] = keel.fn("f" .. i) {
    after = { "a" },
    run = function(ctx)
      while not exists(GO) do keel.sleep(0.01) end
      log("f" .. i)
      return ctx.deps.a + i
    end,
  }
end
return keel.workflow "fan" (nodes)
)lua";
}

// Log lines "NODE PID" -> executions per node and the pids that ran any.
struct Executions {
  std::map<std::string, int> per_node;
  std::set<std::string> pids;
};

Executions ReadLog(const std::string& path) {
  Executions e;
  std::istringstream in(ReadFile(path).value_or(""));
  std::string node, pid;
  while (in >> node >> pid) {
    ++e.per_node[node];
    e.pids.insert(pid);
  }
  return e;
}

// Makes the dead run in `box.db()`: started, a recorded, killed while the
// fan-out waits. Returns its id.
std::string MakeDeadRun(const Sandbox& box, const std::string& wf) {
  std::unique_ptr<Subprocess> run = box.StartDb({"run", wf});
  REQUIRE(run->WaitForStderr(" started: ", kWait));
  const std::string id = RunIdFromStderr(run->Stderr());
  REQUIRE(!id.empty());
  REQUIRE(WaitUntil(
      [&] {
        SqliteDb db(box.db(), false);
        return !db.Query(
                      "SELECT 1 FROM nodes WHERE run_id = ?1 AND node = 'a' AND "
                      "status = 'succeeded'",
                      {id})
                    .empty();
      },
      kWait));
  ExitInfo killed = run->Kill();
  INFO(killed.Describe());
  REQUIRE(killed.signal == SIGKILL);
  // Fold the log into the file, so the file alone is the whole database.
  SqliteDb(box.db(), false).Exec("PRAGMA wal_checkpoint(TRUNCATE)");
  return id;
}

}  // namespace

TEST_CASE("two resumes of one dead run started together: one runs it, the other stops" *
          doctest::timeout(240)) {
  Sandbox box(KEEL_BIN);
  const std::string wf = box.Write("fan.lua", Script(box));
  const std::string id = MakeDeadRun(box, wf);
  const std::string dead = box.Path("dead.db");
  std::filesystem::copy_file(box.db(), dead);
  WriteFile(box.Path("go"), "");
  KeelCli cli(KEEL_BIN, box.dir());

  const auto start = std::chrono::steady_clock::now();
  int both_started_nodes = 0, loser_exit_2 = 0, loser_after_finish = 0;
  for (int trial = 0; trial < kTrials; ++trial) {
    CAPTURE(trial);
    const std::string db = box.Path("trial" + std::to_string(trial) + ".db");
    std::filesystem::copy_file(dead, db);
    WriteFile(box.Path("log"), "");

    // The second starts at once or up to ~90 ms later: the race window moves
    // from the claim itself to the moment the first finishes and exits.
    std::unique_ptr<Subprocess> one = cli.Start({"resume", id, "--db", db});
    std::this_thread::sleep_for(std::chrono::milliseconds(10 * (trial % 10)));
    std::unique_ptr<Subprocess> two = cli.Start({"resume", id, "--db", db});
    ExitInfo r1 = one->Wait(kWait);
    ExitInfo r2 = two->Wait(kWait);
    INFO("first: " << r1.Describe());
    INFO("second: " << r2.Describe());
    REQUIRE_FALSE(r1.timed_out);
    REQUIRE_FALSE(r2.timed_out);

    Executions ran = ReadLog(box.Path("log"));
    CHECK(ran.per_node["a"] == 0);
    for (int i = 1; i <= kFanOut; ++i) {
      CAPTURE(i);
      CHECK(ran.per_node["f" + std::to_string(i)] == 1);
    }
    if (ran.pids.size() > 1) ++both_started_nodes;
    CHECK_MESSAGE(ran.pids.size() == 1, "both processes executed nodes");

    // The winner is the process whose pid ran the nodes.
    const bool one_won = ran.pids.count(std::to_string(one->pid())) == 1;
    const ExitInfo& winner = one_won ? r1 : r2;
    const ExitInfo& loser = one_won ? r2 : r1;
    CHECK(winner.exit_code == 0);
    if (loser.exit_code == 2) {
      ++loser_exit_2;
      CHECK((loser.err.find(id) != std::string::npos ||
             loser.err.find("another process") != std::string::npos));
    } else {
      ++loser_after_finish;
      CHECK(loser.exit_code == 0);
      CHECK(loser.err.find("already succeeded; nothing to resume") != std::string::npos);
    }

    SqliteDb sqlite(db, false);
    CHECK(sqlite.Query("SELECT status FROM runs WHERE id = ?1", {id}).at(0).at(0) == "succeeded");
    auto nodes = sqlite.Query("SELECT node, status FROM nodes WHERE run_id = ?1", {id});
    CHECK(nodes.size() == kFanOut + 1);
    for (const auto& row : nodes) {
      CAPTURE(row[0]);
      CHECK(row[1] == "succeeded");
    }
    // Events: one resume recorded, each node's success recorded once, one finish.
    auto count = [&](const std::string& kind) {
      return std::stoi(
          sqlite.Query("SELECT count(*) FROM events WHERE run_id = ?1 AND kind = ?2", {id, kind})
              .at(0)
              .at(0));
    };
    CHECK(count("run_resumed") == 1);
    CHECK(count("run_finished") == 1);
    for (const auto& row : sqlite.Query(
             "SELECT node, count(*) FROM events WHERE run_id = ?1 AND kind = 'node_succeeded' "
             "GROUP BY node",
             {id})) {
      CAPTURE(row[0]);
      CHECK(row[1] == "1");
    }
    CHECK(sqlite.Query("PRAGMA integrity_check").at(0).at(0) == "ok");
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  MESSAGE(kTrials << " trials in " << seconds << " s: the loser exited 2 in " << loser_exit_2
                  << ", came after the finish in " << loser_after_finish
                  << "; both executed nodes in " << both_started_nodes);
  CHECK(both_started_nodes == 0);
}

}  // namespace keel::testing
