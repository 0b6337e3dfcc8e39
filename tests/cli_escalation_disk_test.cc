// A run's escalation (`on_failure`) when the disk under its SQLite database
// fills, through the real `keel` binary on a small real tmpfs: the run stops
// with exit 1 naming the database, the cause and the resume command, and
// never runs an escalation for a failure that could not be recorded; once
// space frees, `keel resume` finishes the run with each node recorded once
// and no escalation run twice.
//
// Mounting needs root: as anyone else the cases are skipped with a message.

#include <doctest/doctest.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/files.h"
#include "tests/support/keel_cli.h"
#include "tests/support/sandbox.h"
#include "tests/support/sqlite_db.h"
#include "tests/support/subprocess.h"
#include "tests/support/tmpfs.h"

namespace keel::testing {
namespace {

constexpr int kTimeoutS = 60;
constexpr auto kWait = std::chrono::seconds(30);
using SteadyClock = std::chrono::steady_clock;

// main: prepare -> work -> publish, escalating to notify. `work` logs, waits
// for the file "go", then fails unless the file "ok" exists; notify's `send`
// logs, then waits for the file "sent". Every node logs its name when it
// runs.
std::string Flow(const Sandbox& box) {
  return R"lua(local keel = require "keel"
local DIR = ")lua" +
         box.dir() + R"lua("
local function log(name)
  local f = assert(io.open(DIR .. "/log", "a"))
  f:write(name, "\n")
  f:close()
end
local function exists(name)
  local f = io.open(DIR .. "/" .. name, "r")
  if f then f:close() end
  return f ~= nil
end
local function await(name)
  while not exists(name) do keel.sleep(0.02) end
end
keel.workflow "notify" {
  keel.fn "send" { run = function(ctx)
    log("send")
    await("sent")
    return { node = ctx.failure.node, escalation = ctx.failure.escalation }
  end },
}
return keel.workflow "main" {
  on_failure = "notify",
  keel.fn "prepare" { run = function() log("prepare") return 1 end },
  keel.fn "work" { after = { "prepare" }, run = function()
    log("work")
    await("go")
    if not exists("ok") then keel.fail{ kind = "permanent", message = "quota exceeded" } end
    return "done"
  end },
  keel.fn "publish" { after = { "work" }, run = function() log("publish") return "published" end },
}
)lua";
}

std::map<std::string, int> Ran(const Sandbox& box) {
  return CountLines(ReadFile(box.Path("log")).value_or(""));
}

std::string Scalar(const std::string& db, const std::string& sql, const std::string& id) {
  auto rows = SqliteDb(db, false).Query(sql, {id});
  return rows.empty() || rows[0].empty() ? "" : rows[0][0];
}

std::string NodeStatus(const std::string& db, const std::string& id, const std::string& node) {
  auto rows = SqliteDb(db, false).Query("SELECT status FROM nodes WHERE run_id = ?1 AND node = ?2",
                                        {id, node});
  return rows.empty() ? "" : rows[0][0];
}

int Events(const std::string& db, const std::string& id, const std::string& kind) {
  return std::stoi(
      Scalar(db, "SELECT count(*) FROM events WHERE run_id = ?1 AND kind = '" + kind + "'", id));
}

// The run's events numbered 1, 2, ... without a gap or a repeat.
void CheckSequence(const std::string& db, const std::string& id) {
  CHECK(Scalar(db, "SELECT count(*) = max(seq) FROM events WHERE run_id = ?1", id) == "1");
}

// Starts `keel run` of the flow, the database at `db`; returns once `work` runs.
std::unique_ptr<Subprocess> StartFlow(const Sandbox& box, const std::string& db, std::string* id) {
  KeelCli cli(KEEL_BIN, box.dir());
  auto run =
      cli.Start({"run", box.Write("flow.lua", Flow(box)), "--db", db, "--storage-timeout", "2"});
  REQUIRE(run->WaitForStderr(" started: ", kWait));
  *id = RunIdFromStderr(run->Stderr());
  REQUIRE(!id->empty());
  REQUIRE(WaitUntil([&] { return Ran(box)["work"] == 1; }, kWait));
  // prepare's record is committed before the disk fills.
  REQUIRE(WaitUntil([&] { return NodeStatus(db, *id, "prepare") == "succeeded"; }, kWait));
  return run;
}

// The run stopped for its storage: exit 1 naming the cause, the database
// and how to go on, within the storage timeout and a little.
void CheckStopped(Subprocess* run, const std::string& db, const std::string& id,
                  SteadyClock::time_point filled) {
  ExitInfo stopped = run->Wait(kWait);
  const double seconds = std::chrono::duration<double>(SteadyClock::now() - filled).count();
  INFO(stopped.Describe());
  MESSAGE("stopped " << seconds << " s after the disk filled");
  REQUIRE_FALSE(stopped.timed_out);
  CHECK(stopped.exit_code == 1);
  CHECK(stopped.err.find("cannot save checkpoints") != std::string::npos);
  CHECK(stopped.err.find("full") != std::string::npos);
  CHECK(stopped.err.find(db) != std::string::npos);
  CHECK(stopped.err.find("`keel resume " + id + " --db " + db + "` continues it") !=
        std::string::npos);
  CHECK(seconds < 10);
}

}  // namespace

TEST_CASE("the disk fills as a run fails: it stops unescalated, and the resume escalates once" *
          doctest::timeout(kTimeoutS)) {
  KEEL_TMPFS_OR_SKIP(fs, "4m");
  Sandbox box(KEEL_BIN);
  box.Write("sent", "");
  const std::string db = fs->Path("keel.db");
  std::string id;
  auto run = StartFlow(box, db, &id);
  REQUIRE(fs->Fill());
  const auto filled = SteadyClock::now();
  box.Write("go", "");  // work fails now, with nowhere to record it
  CheckStopped(run.get(), db, id, filled);
  CHECK_MESSAGE(Ran(box)["send"] == 0, "escalated a failure that was never recorded");

  fs->Free();
  CHECK(Events(db, id, "escalation_started") == 0);
  ExitInfo failed = box.Keel({"resume", id, "--db", db}, kWait);
  INFO(failed.Describe());
  CHECK(failed.exit_code == 1);
  CHECK(failed.out.find("escalated to notify: succeeded") != std::string::npos);
  CHECK(NodeStatus(db, id, "on_failure#1/send") == "succeeded");
  CHECK(Events(db, id, "escalation_started") == 1);
  CHECK(Events(db, id, "escalation_finished") == 1);

  box.Write("ok", "");
  ExitInfo done = box.Keel({"resume", id, "--db", db}, kWait);
  INFO(done.Describe());
  REQUIRE(done.exit_code == 0);
  CHECK(Scalar(db, "SELECT status FROM runs WHERE id = ?1", id) == "succeeded");
  for (const char* node : {"prepare", "work", "publish", "on_failure#1/send"}) {
    CAPTURE(node);
    CHECK(NodeStatus(db, id, node) == "succeeded");
  }
  CHECK(Scalar(db, "SELECT count(*) FROM nodes WHERE run_id = ?1", id) == "4");
  CHECK(Events(db, id, "escalation_started") == 1);
  CheckSequence(db, id);
  std::map<std::string, int> ran = Ran(box);
  CHECK(ran["prepare"] == 1);
  CHECK(ran["work"] == 3);  // failed unrecorded, failed, succeeded
  CHECK(ran["publish"] == 1);
  CHECK(ran["send"] == 1);
}

TEST_CASE(
    "the disk fills during the escalation: the run stops naming it, and the resume "
    "finishes it with each node recorded once" *
    doctest::timeout(kTimeoutS)) {
  KEEL_TMPFS_OR_SKIP(fs, "4m");
  Sandbox box(KEEL_BIN);
  box.Write("go", "");
  const std::string db = fs->Path("keel.db");
  std::string id;
  auto run = StartFlow(box, db, &id);
  // The failure is recorded and the escalation under way.
  REQUIRE(WaitUntil([&] { return Ran(box)["send"] == 1; }, kWait));
  REQUIRE(WaitUntil([&] { return Events(db, id, "escalation_started") == 1; }, kWait));
  CHECK(NodeStatus(db, id, "work") == "failed");
  REQUIRE(fs->Fill());
  const auto filled = SteadyClock::now();
  box.Write("sent", "");  // send finishes, with nowhere to record it
  CheckStopped(run.get(), db, id, filled);

  fs->Free();
  CHECK(NodeStatus(db, id, "on_failure#1/send") != "succeeded");
  CHECK(Events(db, id, "escalation_finished") == 0);
  CHECK(Scalar(db, "SELECT status FROM runs WHERE id = ?1", id) == "running");
  box.Write("ok", "");
  ExitInfo done = box.Keel({"resume", id, "--db", db}, kWait);
  INFO(done.Describe());
  REQUIRE(done.exit_code == 0);
  CHECK(Scalar(db, "SELECT status FROM runs WHERE id = ?1", id) == "succeeded");
  for (const char* node : {"prepare", "work", "publish"}) {
    CAPTURE(node);
    CHECK(NodeStatus(db, id, node) == "succeeded");
  }
  CHECK(Events(db, id, "escalation_started") == 1);
  CHECK(Events(db, id, "run_finished") == 1);
  CheckSequence(db, id);
  std::map<std::string, int> ran = Ran(box);
  CHECK(ran["prepare"] == 1);
  CHECK(ran["work"] == 2);  // failed (recorded), then succeeded
  CHECK(ran["publish"] == 1);
  CHECK(ran["send"] == 1);  // the succeeded run escalates nothing more
  ExitInfo show = box.Keel({"show", id, "--db", db}, kWait);
  CHECK_MESSAGE(show.exit_code == 0, show.Describe());
}

}  // namespace keel::testing
