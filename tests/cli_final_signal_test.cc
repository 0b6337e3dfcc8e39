// SIGTERM or SIGINT sent at random moments around the end of short runs,
// through the real binary: whatever the moment, the status recorded in the
// database, the last event and the exit code agree. Before the run's finish
// is queued, the signal wins: the run is recorded interrupted (last event
// run_interrupted) and keel dies of the signal. From then on the signal is
// ignored: the run's own status is recorded (last event run_finished with
// that status) and is the exit code.

#include <doctest/doctest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/json.h"
#include "tests/support/keel_cli.h"
#include "tests/support/sandbox.h"
#include "tests/support/sqlite_db.h"
#include "tests/support/subprocess.h"

namespace keel::testing {
namespace {

constexpr int kTimeoutS = 300;
constexpr int kTrials = 60;

// Four nodes, the last a sink that waits 50 ms, so that signals land both
// while it runs and while the run's end is recorded.
const char kShort[] = R"lua(local keel = require "keel"
return keel.workflow "short" {
  keel.fn "a" { run = function() return 1 end },
  keel.fn "b" { after = { "a" }, run = function(ctx) return ctx.deps.a + 1 end },
  keel.fn "c" { after = { "a" }, run = function(ctx) return ctx.deps.a + 2 end },
  keel.fn "d" { after = { "b", "c" }, run = function(ctx)
    keel.sleep(0.05)
    return ctx.deps.b + ctx.deps.c
  end },
}
)lua";

// A run's recorded status and its last run-level event.
struct Recorded {
  std::string status;
  std::string last_kind;
  std::string last_status;  // the status in the last event's data, if any
  int endings = 0;          // run_finished and run_interrupted events
};

Recorded ReadRun(const std::string& db, const std::string& run_id) {
  SqliteDb sql(db, /*create=*/false);
  auto run = sql.Query("SELECT status FROM runs WHERE id = ?1", {run_id});
  REQUIRE(run.size() == 1);
  // Run-level events only: a node that finishes while the process is dying
  // of the signal may still record its own event after run_interrupted.
  auto last = sql.Query(
      "SELECT kind, data_json FROM events WHERE run_id = ?1 AND kind IN ('run_started', "
      "'run_resumed', 'run_finished', 'run_interrupted') ORDER BY seq DESC LIMIT 1",
      {run_id});
  REQUIRE(last.size() == 1);
  auto endings = sql.Query(
      "SELECT count(*) FROM events WHERE run_id = ?1 AND kind IN ('run_finished', "
      "'run_interrupted')",
      {run_id});
  return {run[0][0], last[0][0], Json::Parse(last[0][1])["status"].Str(), std::stoi(endings[0][0])};
}

// How long a run takes from its "started" line to its exit, in microseconds.
long MeasureTail(const Sandbox& box, const std::string& wf) {
  auto child = box.StartDb({"run", wf, "--durability", "full"});
  REQUIRE(child->WaitForStderr(" started: ", std::chrono::seconds(60)));
  auto began = std::chrono::steady_clock::now();
  ExitInfo r = child->Wait(std::chrono::seconds(60));
  INFO(r.Describe());
  REQUIRE(r.exit_code == 0);
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() -
                                                               began)
      .count();
}

// The ids of the runs in `db`.
std::set<std::string> RunIds(const std::string& db) {
  std::set<std::string> ids;
  if (!std::filesystem::exists(db)) return ids;
  SqliteDb sql(db, /*create=*/false);
  for (const auto& row : sql.Query("SELECT id FROM runs")) ids.insert(row[0]);
  return ids;
}

// What the trials ended as.
struct Tally {
  int before_run = 0;  // killed before the run was created: nothing recorded
  int interrupted = 0;
  int finished = 0;
};

// Starts `keel run wf`, waits `wait_us` after the moment `started` says
// (the spawn, or the "started" line), sends `signal_number`, and checks
// that the exit, the recorded status and the last run event agree.
void Trial(const Sandbox& box, const std::string& wf, bool after_banner, long wait_us,
           int signal_number, Tally* tally) {
  std::set<std::string> before = RunIds(box.db());
  auto child = box.StartDb({"run", wf, "--durability", "full"});
  if (after_banner) REQUIRE(child->WaitForStderr(" started: ", std::chrono::seconds(60)));
  std::this_thread::sleep_for(std::chrono::microseconds(wait_us));
  kill(child->pid(), signal_number);
  ExitInfo r = child->Wait(std::chrono::seconds(60));
  INFO(r.Describe());
  REQUIRE_FALSE(r.timed_out);
  std::set<std::string> after = RunIds(box.db());
  std::vector<std::string> added;
  for (const std::string& id : after) {
    if (!before.count(id)) added.push_back(id);
  }
  REQUIRE(added.size() <= 1);
  if (added.empty()) {
    ++tally->before_run;
    CHECK(r.signal == signal_number);
    CHECK(RunIdFromStderr(r.err).empty());
    return;
  }
  const std::string& id = added[0];
  CHECK(RunIdFromStderr(r.err) == id);
  Recorded run = ReadRun(box.db(), id);
  CAPTURE(run.status);
  CAPTURE(run.last_kind);
  CAPTURE(run.last_status);
  // One ending: never interrupted after run_finished.
  CHECK(run.endings == 1);
  if (r.signal != 0) {
    ++tally->interrupted;
    CHECK(r.signal == signal_number);
    CHECK(run.status == "interrupted");
    CHECK(run.last_kind == "run_interrupted");
    CHECK(r.err.find("interrupted; resume with: keel resume " + id) != std::string::npos);
  } else {
    ++tally->finished;
    CHECK(r.exit_code == 0);
    CHECK(run.status == "succeeded");
    CHECK(run.last_kind == "run_finished");
    CHECK(run.last_status == "succeeded");
    CHECK(r.out.find("run " + id + " succeeded") != std::string::npos);
  }
}

TEST_CASE("a signal around the end of a run: status, last event and exit code agree" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("short.lua", kShort);
  long tail = 0;
  for (int i = 0; i < 3; ++i) tail = std::max(tail, MeasureTail(box, wf));
  MESSAGE("a run's tail after its started line: " << tail << " us");

  std::mt19937 rng(20261204);
  // From while d still runs to past the exit, the end's recording in between.
  std::uniform_int_distribution<long> delay(tail / 3, tail + tail / 4);
  Tally tally;
  for (int trial = 0; trial < kTrials; ++trial) {
    int signal_number = trial % 3 == 2 ? SIGINT : SIGTERM;
    long wait_us = delay(rng);
    CAPTURE(trial);
    CAPTURE(signal_number);
    CAPTURE(wait_us);
    Trial(box, wf, /*after_banner=*/true, wait_us, signal_number, &tally);
  }
  MESSAGE(tally.interrupted << " trials interrupted, " << tally.finished << " finished");
  CHECK(tally.before_run == 0);
}

TEST_CASE("a signal at any moment of a run's process: never a run left running" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("short.lua", kShort);
  // The whole process: start-up, script load, database, run, exit.
  long whole = 0;
  for (int i = 0; i < 3; ++i) {
    auto began = std::chrono::steady_clock::now();
    ExitInfo r = box.KeelDb({"run", wf, "--durability", "full"});
    REQUIRE(r.exit_code == 0);
    whole = std::max<long>(whole, std::chrono::duration_cast<std::chrono::microseconds>(
                                      std::chrono::steady_clock::now() - began)
                                      .count());
  }
  MESSAGE("a whole run's process: " << whole << " us");

  std::mt19937 rng(4122026);
  std::uniform_int_distribution<long> delay(0, whole);
  Tally tally;
  for (int trial = 0; trial < kTrials; ++trial) {
    int signal_number = trial % 2 == 1 ? SIGINT : SIGTERM;
    long wait_us = delay(rng);
    CAPTURE(trial);
    CAPTURE(signal_number);
    CAPTURE(wait_us);
    Trial(box, wf, /*after_banner=*/false, wait_us, signal_number, &tally);
  }
  MESSAGE(tally.before_run << " trials ended before the run existed, " << tally.interrupted
                           << " interrupted, " << tally.finished << " finished");
}

}  // namespace
}  // namespace keel::testing
