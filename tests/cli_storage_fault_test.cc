// Real storage faults under a real `keel run`: the database lives on a small
// tmpfs that the test fills (disk full) and frees, or another process (the
// sqlite3 shell) holds the write lock. A short fault only delays checkpoints:
// the run succeeds with every node recorded in order. A fault that outlasts
// --storage-timeout stops the run with exit 1 naming the cause; once the
// cause is gone `keel resume` finishes it without running a recorded node
// again.
//
// Mounting needs root: as anyone else the tmpfs cases are skipped with a message.

#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/files.h"
#include "tests/support/keel_cli.h"
#include "tests/support/sandbox.h"
#include "tests/support/sqlite_db.h"
#include "tests/support/subprocess.h"
#include "tests/support/tmpfs.h"

namespace keel::testing {
namespace {

constexpr int kNodes = 40;
constexpr int kTimeoutS = 120;
constexpr auto kWait = std::chrono::seconds(60);
using SteadyClock = std::chrono::steady_clock;

double Since(SteadyClock::time_point start) {
  return std::chrono::duration<double>(SteadyClock::now() - start).count();
}

// A 40-node chain: n1 -> n2 -> ... -> n40, each logging its name, waiting
// `pause` seconds (without blocking a worker) and returning its number.
std::string ChainScript(const Sandbox& box, double pause) {
  std::string lua = R"lua(local keel = require "keel"
local LOG = ")lua" + box.Path("log") +
                    R"lua("
local PAUSE = )lua" +
                    std::to_string(pause) +
                    R"lua(
local function log(name)
  local f = assert(io.open(LOG, "a"))
  f:write(name, "\n")
  f:close()
end
local nodes = {}
for i = 1, )lua" + std::to_string(kNodes) +
                    R"lua( do
  nodes[i] = keel.fn("n" .. i) {
    after = i > 1 and { "n" .. (i - 1) } or nil,
    run = function(ctx)
      log("n" .. i)
      keel.sleep(PAUSE)
      return i
    end,
  }
end
return keel.workflow "chain" (nodes)
)lua";
  return lua;
}

std::map<std::string, int> LogCounts(const Sandbox& box) {
  return CountLines(ReadFile(box.Path("log")).value_or(""));
}

int Executions(const Sandbox& box) {
  int total = 0;
  for (const auto& [node, count] : LogCounts(box)) total += count;
  return total;
}

// The nodes recorded succeeded, from the database itself.
std::map<std::string, std::string> Succeeded(const std::string& db, const std::string& id) {
  std::map<std::string, std::string> out;
  SqliteDb sqlite(db, false);
  for (const auto& row : sqlite.Query(
           "SELECT node, output_json FROM nodes WHERE run_id = ?1 AND status = 'succeeded'",
           {id})) {
    out[row[0]] = row[1];
  }
  return out;
}

std::string StatusOfRun(const std::string& db, const std::string& id) {
  return SqliteDb(db, false).Query("SELECT status FROM runs WHERE id = ?1", {id}).at(0).at(0);
}

// Recorded succeeded nodes of a chain must be n1..nk for some k.
void CheckPrefix(const std::map<std::string, std::string>& succeeded) {
  const int k = static_cast<int>(succeeded.size());
  for (int i = 1; i <= k; ++i) {
    CAPTURE(i);
    auto it = succeeded.find("n" + std::to_string(i));
    REQUIRE_MESSAGE(it != succeeded.end(), "recorded nodes are not a prefix of the chain");
    CHECK(it->second == std::to_string(i));
  }
}

// The events of a finished chain run: every node's success recorded once, in
// chain order, the run's finish after all of them, sequence without gaps.
void CheckEvents(const std::string& db, const std::string& id) {
  SqliteDb sqlite(db, false);
  auto events =
      sqlite.Query("SELECT seq, node, kind FROM events WHERE run_id = ?1 ORDER BY seq", {id});
  int next_node = 1;
  int64_t expected_seq = 1;
  bool finished = false;
  for (const auto& row : events) {
    CAPTURE(row[0]);
    CHECK(std::stoll(row[0]) == expected_seq++);
    if (row[2] == "node_succeeded") {
      CHECK_FALSE(finished);
      CHECK(row[1] == "n" + std::to_string(next_node));
      ++next_node;
    }
    if (row[2] == "run_finished") finished = true;
  }
  CHECK(next_node == kNodes + 1);
  CHECK(finished);
}

// Starts `keel run` of the chain with the database at `db`; returns it once
// the run id is known.
std::unique_ptr<Subprocess> StartChain(const KeelCli& cli, const std::string& wf,
                                       const std::string& db, const std::vector<std::string>& extra,
                                       std::string* id) {
  std::vector<std::string> args{"run", wf, "--db", db};
  args.insert(args.end(), extra.begin(), extra.end());
  std::unique_ptr<Subprocess> run = cli.Start(args);
  REQUIRE(run->WaitForStderr(" started: ", kWait));
  *id = RunIdFromStderr(run->Stderr());
  REQUIRE(!id->empty());
  return run;
}

bool WaitForNode(const Sandbox& box, int node) {
  return WaitUntil([&] { return LogCounts(box)["n" + std::to_string(node)] >= 1; }, kWait);
}

// The sqlite3 shell holding an exclusive transaction on `db` for `seconds`;
// returns once it holds it (it touches `signal` then).
std::unique_ptr<Subprocess> HoldLock(const std::string& db, const std::string& signal,
                                     int seconds) {
  SpawnOptions options;
  options.args = {"-cmd", ".timeout 10000",
                  "-cmd", "BEGIN EXCLUSIVE;",
                  "-cmd", ".shell touch '" + signal + "'",
                  "-cmd", ".shell sleep " + std::to_string(seconds),
                  db,     "COMMIT;"};
  auto holder = std::make_unique<Subprocess>("/usr/bin/sqlite3", options);
  REQUIRE(
      WaitUntil([&] { return FileExists(signal) || holder->Exited(); }, std::chrono::seconds(20)));
  REQUIRE_MESSAGE(FileExists(signal), holder->Stderr());
  return holder;
}

}  // namespace

TEST_CASE("the disk fills for a second mid-run: the run waits and records everything" *
          doctest::timeout(kTimeoutS)) {
  KEEL_TMPFS_OR_SKIP(fs, "4m");
  Sandbox box(KEEL_BIN);
  KeelCli cli(KEEL_BIN, box.dir());
  const std::string wf = box.Write("chain.lua", ChainScript(box, 0.05));
  const std::string db = fs->Path("keel.db");
  std::string id;
  std::unique_ptr<Subprocess> run = StartChain(cli, wf, db, {}, &id);
  REQUIRE(WaitForNode(box, 10));
  REQUIRE(fs->Fill());
  // Give a commit in flight time to land, then nothing more may.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const size_t recorded_when_full = Succeeded(db, id).size();
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  CHECK_MESSAGE(Succeeded(db, id).size() == recorded_when_full,
                "checkpoints went on while the disk was full");
  fs->Free();
  ExitInfo done = run->Wait(kWait);
  INFO(done.Describe());
  REQUIRE(done.exit_code == 0);
  CHECK(StatusOfRun(db, id) == "succeeded");
  auto succeeded = Succeeded(db, id);
  CHECK(succeeded.size() == kNodes);
  CheckPrefix(succeeded);
  CheckEvents(db, id);
  for (const auto& entry : LogCounts(box)) {
    const auto& node = entry.first;
    const auto& count = entry.second;
    CAPTURE(node);
    CHECK(count == 1);
  }
}

TEST_CASE("the disk stays full: the run stops naming it, and resume finishes once it is freed" *
          doctest::timeout(kTimeoutS)) {
  KEEL_TMPFS_OR_SKIP(fs, "4m");
  Sandbox box(KEEL_BIN);
  KeelCli cli(KEEL_BIN, box.dir());
  constexpr double kPause = 0.2;  // 40 nodes take 8 s: far longer than the timeout
  const std::string wf = box.Write("chain.lua", ChainScript(box, kPause));
  const std::string db = fs->Path("keel.db");
  std::string id;
  std::unique_ptr<Subprocess> run = StartChain(cli, wf, db, {"--storage-timeout", "2"}, &id);
  REQUIRE(WaitForNode(box, 5));
  REQUIRE(fs->Fill());
  const auto filled = SteadyClock::now();
  const int ran_at_fill = Executions(box);
  ExitInfo stopped = run->Wait(kWait);
  const double stop_seconds = Since(filled);
  const int ran_after_fill = Executions(box) - ran_at_fill;
  INFO(stopped.Describe());
  MESSAGE("stopped " << stop_seconds << " s after the disk filled; " << ran_after_fill
                     << " nodes started meanwhile");
  REQUIRE_FALSE(stopped.timed_out);
  CHECK(stopped.exit_code == 1);
  CHECK(stopped.err.find("cannot save checkpoints") != std::string::npos);
  CHECK(stopped.err.find("full") != std::string::npos);
  // The command that continues the run names the database it was given.
  CHECK(stopped.err.find("`keel resume " + id + " --db " + db + "` continues it") !=
        std::string::npos);
  CHECK(stop_seconds >= 1.5);
  CHECK(stop_seconds < 10);
  // Running ahead of the record is bounded: nowhere near the whole chain.
  CHECK(ran_after_fill <= static_cast<int>((stop_seconds + 1) / kPause) + 2);
  CHECK(Executions(box) < kNodes);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const std::map<std::string, int> counts_at_stop = LogCounts(box);
  CHECK(Executions(box) == ran_at_fill + ran_after_fill);  // nothing runs on after exit

  fs->Free();
  const auto recorded = Succeeded(db, id);
  CheckPrefix(recorded);
  CHECK(recorded.size() < kNodes);
  CHECK(StatusOfRun(db, id) != "succeeded");

  ExitInfo resumed = box.Keel({"resume", id, "--db", db}, kWait);
  INFO(resumed.Describe());
  REQUIRE(resumed.exit_code == 0);
  CHECK(StatusOfRun(db, id) == "succeeded");
  auto all = Succeeded(db, id);
  CHECK(all.size() == kNodes);
  CheckPrefix(all);
  std::map<std::string, int> counts = LogCounts(box);
  for (const auto& entry : recorded) {
    const auto& node = entry.first;
    CAPTURE(node);
    CHECK_MESSAGE(counts[node] == 1, "a node whose record was committed ran again");
  }
  for (int i = 1; i <= kNodes; ++i) {
    const std::string node = "n" + std::to_string(i);
    CAPTURE(node);
    CHECK(counts[node] >= 1);
    CHECK(counts[node] <= 2);
  }
}

TEST_CASE("another process holds the write lock for a while: the run waits and succeeds" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  KeelCli cli(KEEL_BIN, box.dir());
  const std::string wf = box.Write("chain.lua", ChainScript(box, 0.05));
  const std::string db = box.db();
  std::string id;
  std::unique_ptr<Subprocess> run = StartChain(cli, wf, db, {"--storage-timeout", "10"}, &id);
  REQUIRE(WaitForNode(box, 10));
  std::unique_ptr<Subprocess> holder = HoldLock(db, box.Path("locked"), 2);
  // The lock really holds checkpoints back.
  const size_t recorded_when_locked = Succeeded(db, id).size();
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  if (!holder->Exited()) CHECK(Succeeded(db, id).size() == recorded_when_locked);
  ExitInfo held = holder->Wait(kWait);
  INFO(held.Describe());
  CHECK(held.exit_code == 0);
  ExitInfo done = run->Wait(kWait);
  INFO(done.Describe());
  REQUIRE(done.exit_code == 0);
  CHECK(StatusOfRun(db, id) == "succeeded");
  auto succeeded = Succeeded(db, id);
  CHECK(succeeded.size() == kNodes);
  CheckPrefix(succeeded);
  CheckEvents(db, id);
  for (const auto& entry : LogCounts(box)) {
    const auto& node = entry.first;
    const auto& count = entry.second;
    CAPTURE(node);
    CHECK(count == 1);
  }
}

TEST_CASE("another process holds the write lock past --storage-timeout: exit 1, then resume" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  KeelCli cli(KEEL_BIN, box.dir());
  const std::string wf = box.Write("chain.lua", ChainScript(box, 0.2));
  const std::string db = box.db();
  std::string id;
  std::unique_ptr<Subprocess> run = StartChain(cli, wf, db, {"--storage-timeout", "2"}, &id);
  REQUIRE(WaitForNode(box, 5));
  constexpr int kHoldSeconds = 8;
  std::unique_ptr<Subprocess> holder = HoldLock(db, box.Path("locked"), kHoldSeconds);
  const auto locked = SteadyClock::now();
  ExitInfo stopped = run->Wait(kWait);
  const double stop_seconds = Since(locked);
  INFO(stopped.Describe());
  MESSAGE("stopped " << stop_seconds << " s after the lock was taken");
  REQUIRE_FALSE(stopped.timed_out);
  CHECK(stopped.exit_code == 1);
  CHECK(stopped.err.find("cannot save checkpoints") != std::string::npos);
  CHECK(stopped.err.find("locked") != std::string::npos);
  CHECK(stop_seconds < kHoldSeconds);
  CHECK_FALSE(holder->Exited());  // it stopped while the lock was still held

  ExitInfo held = holder->Wait(kWait);
  INFO(held.Describe());
  CHECK(held.exit_code == 0);
  const auto recorded = Succeeded(db, id);
  CheckPrefix(recorded);
  CHECK(recorded.size() < kNodes);

  ExitInfo resumed = box.Keel({"resume", id, "--db", db}, kWait);
  INFO(resumed.Describe());
  REQUIRE(resumed.exit_code == 0);
  CHECK(StatusOfRun(db, id) == "succeeded");
  auto all = Succeeded(db, id);
  CHECK(all.size() == kNodes);
  CheckPrefix(all);
  std::map<std::string, int> counts = LogCounts(box);
  for (const auto& entry : recorded) {
    const auto& node = entry.first;
    CAPTURE(node);
    CHECK_MESSAGE(counts[node] == 1, "a node whose record was committed ran again");
  }
}

}  // namespace keel::testing
