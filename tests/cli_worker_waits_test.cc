// Wait nodes of distributed runs (store/postgres/pg_wait_wakes.h), with
// real `keel` processes against a real PostgreSQL server: a wait parks the
// run on workers, `keel signal` from another process or a due timer wakes
// it on whichever worker looks first, a wait's timeout fails it with its due time kept across a resume,
// and many waits woken by racing workers are each woken once.

#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/support/keel_cli.h"
#include "tests/support/temp_dir.h"
#include "tests/worker_test_util.h"

namespace keel::testing {
namespace {

using namespace std::chrono_literals;

// draft -> approval (a signal wait) -> publish, and draft -> cool (a 1 s
// timer) -> cooled.
const char kApproval[] = R"lua(local keel = require "keel"
return keel.workflow "approval" {
  keel.fn "draft" { run = function(ctx) return { text = "v1" } end },
  keel.wait "approval" { after = { "draft" }, signal = "approve", timeout = 600 },
  keel.fn "publish" { after = { "draft", "approval" }, run = function(ctx)
    return { text = ctx.deps.draft.text, by = ctx.deps.approval.by } end },
  keel.wait "cool" { after = { "draft" }, delay = 1 },
  keel.fn "cooled" { after = { "cool" }, run = function(ctx) return "cooled" end },
}
)lua";

// A signal wait that times out after 3 s.
const char kTimeout[] = R"lua(local keel = require "keel"
return keel.workflow "deadline" {
  keel.wait "answer" { signal = "answer", timeout = 3 },
  keel.fn "use" { after = { "answer" }, run = function(ctx) return ctx.deps.answer end },
}
)lua";

const char kOneWait[] = R"lua(local keel = require "keel"
return keel.workflow "one" {
  keel.wait "go" { signal = "go" },
  keel.fn "done" { after = { "go" }, run = function(ctx) return ctx.deps.go end },
}
)lua";

// `keel run FILE` on `url`, which must park (exit 4): the run's id, and
// how the command ended in `ran` when given.
std::string RunParked(const KeelCli& keel, const std::string& file, const std::string& url,
                      ExitInfo* ran = nullptr) {
  ExitInfo exit = keel.Run({"run", file, "--db", url}, 60s);
  REQUIRE_MESSAGE(exit.exit_code == 4, exit.Describe());
  std::string id = RunIdFromStderr(exit.err);
  REQUIRE(!id.empty());
  if (ran != nullptr) *ran = std::move(exit);
  return id;
}

std::string Status(Db& db, const std::string& id) {
  return db.Scalar("SELECT status FROM runs WHERE id = $1", {id});
}

TEST_CASE("a distributed run parks on its waits; a signal and a timer wake it on a worker" *
          doctest::timeout(120)) {
  auto url = FreshDbOrSkip("worker_waits");
  if (!url) return;
  TempDir dir;
  std::string file = dir.Write("approval.lua", kApproval);
  KeelCli keel(KEEL_BIN, dir.path());

  // `keel run` works on the run until it parks, and says what it waits for.
  ExitInfo ran;
  std::string id = RunParked(keel, file, *url, &ran);
  CHECK(ran.err.find("approval waits for signal 'approve'") != std::string::npos);
  CHECK(ran.err.find("keel signal " + id + " approve --data JSON") != std::string::npos);
  CHECK(ran.err.find("workers continue the run when the signal comes") != std::string::npos);
  CHECK(ran.err.find("keel resume") == std::string::npos);
  Db db = Connect(*url);
  CHECK(Status(db, id) == "waiting");
  CHECK(db.Scalar("SELECT string_agg(node, ',' ORDER BY node) FROM nodes WHERE run_id = $1 AND "
                  "status = 'waiting'",
                  {id}) == "approval,cool");

  // A worker wakes the timer: `cooled` runs, and the run parks again on its signal.
  auto worker = keel.Start({"worker", "--db", *url, "--lease", "2s"});
  CHECK(db.WaitFor("SELECT status FROM nodes WHERE run_id = $1 AND node = 'cooled'", "succeeded",
                   30s, {id}));
  CHECK(db.WaitFor("SELECT status FROM runs WHERE id = $1", "waiting", 30s, {id}));
  CHECK(db.Scalar("SELECT data_json FROM events WHERE run_id = $1 AND node = 'cool' AND "
                  "kind = 'wait_woken'",
                  {id}) == R"({"by":"timer"})");
  // The timer ran out when it was due (1 s after the wait was first reached), not later.
  CHECK(db.Scalar("SELECT (SELECT ts FROM events WHERE run_id = $1 AND node = 'cool' AND kind = "
                  "'wait_woken') - (SELECT ts FROM events WHERE run_id = $1 AND node = 'cool' AND "
                  "kind = 'wait_started') BETWEEN 0.9 AND 6",
                  {id}) == "t");

  // The signal, sent by another process, wakes the wait on the worker.
  ExitInfo sent = keel.Run({"signal", id, "approve", "--data", R"({"by":"ann"})", "--db", *url});
  REQUIRE_MESSAGE(sent.exit_code == 0, sent.Describe());
  CHECK(sent.err.find("workers on") != std::string::npos);
  bool done = db.WaitFor("SELECT status FROM runs WHERE id = $1", "succeeded", 30s, {id});
  StopWorkers({worker.get()});
  REQUIRE(done);
  CHECK(db.Scalar("SELECT output_json FROM nodes WHERE run_id = $1 AND node = 'publish'", {id}) ==
        R"({"by":"ann","text":"v1"})");
  CHECK(db.Scalar("SELECT output_json FROM nodes WHERE run_id = $1 AND node = 'approval'", {id}) ==
        R"({"by":"ann"})");
  CHECK(db.Scalar("SELECT data_json FROM events WHERE run_id = $1 AND node = 'approval' AND "
                  "kind = 'wait_woken'",
                  {id}) == R"({"by":"signal"})");
  // Each wait parked once and was committed once, by its last claim.
  CHECK(db.Scalar("SELECT string_agg(node || ':' || action, ',' ORDER BY node, id) FROM claim_log "
                  "WHERE run_id = $1 AND node IN ('approval', 'cool') AND action IN ('park', "
                  "'commit')",
                  {id}) == "approval:park,approval:commit,cool:park,cool:commit");
  CheckInvariants(db, id, 5);
  // The woken wait's second attempt counts on from its first.
  CHECK(db.Scalar("SELECT attempts FROM nodes WHERE run_id = $1 AND node = 'approval'", {id}) ==
        "2");
}

TEST_CASE("keel run --wait on PostgreSQL keeps working until the signal comes" *
          doctest::timeout(120)) {
  auto url = FreshDbOrSkip("worker_hold");
  if (!url) return;
  TempDir dir;
  std::string file = dir.Write("one.lua", kOneWait);
  KeelCli keel(KEEL_BIN, dir.path());
  auto run = keel.Start({"run", file, "--db", *url, "--wait"});
  Db db = Connect(*url);
  REQUIRE(db.WaitFor("SELECT to_regclass('runs') IS NOT NULL", "t", 30s));
  REQUIRE(db.WaitFor("SELECT count(*) FROM runs WHERE status = 'waiting'", "1", 30s));
  std::string id = db.Scalar("SELECT id FROM runs");
  std::this_thread::sleep_for(1s);  // still waiting, not ended
  ExitInfo sent = keel.Run({"signal", id, "go", "--data", "42", "--db", *url});
  REQUIRE_MESSAGE(sent.exit_code == 0, sent.Describe());
  ExitInfo exit = run->Wait(60s);
  CHECK_MESSAGE(exit.exit_code == 0, exit.Describe());
  CHECK(Status(db, id) == "succeeded");
  CHECK(db.Scalar("SELECT output_json FROM nodes WHERE run_id = $1 AND node = 'done'", {id}) ==
        "42");
}

TEST_CASE("a wait's timeout fails it on a worker; a resume keeps its due time, a later one "
          "starts it afresh" *
          doctest::timeout(120)) {
  auto url = FreshDbOrSkip("worker_wait_timeout");
  if (!url) return;
  TempDir dir;
  std::string file = dir.Write("deadline.lua", kTimeout);
  KeelCli keel(KEEL_BIN, dir.path());
  std::string id = RunParked(keel, file, *url);
  Db db = Connect(*url);

  // A resume while it waits runs the wait again; its timeout still counts
  // from when it was first reached.
  ExitInfo resumed = keel.Run({"resume", id, "--db", *url}, 60s);
  CHECK_MESSAGE(resumed.exit_code == 4, resumed.Describe());
  auto worker = keel.Start({"worker", "--db", *url, "--lease", "2s"});
  REQUIRE(db.WaitFor("SELECT status FROM runs WHERE id = $1", "failed", 30s, {id}));
  CHECK(db.Scalar("SELECT error_kind FROM nodes WHERE run_id = $1 AND node = 'answer'", {id}) ==
        "timeout");
  CHECK(db.Scalar("SELECT error_message FROM nodes WHERE run_id = $1 AND node = 'answer'", {id}) ==
        "signal 'answer' did not come within 3s");
  CHECK(db.Scalar("SELECT count(*) FROM events WHERE run_id = $1 AND kind = 'wait_started'",
                  {id}) == "1");
  CHECK(db.Scalar("SELECT (SELECT finished_at FROM nodes WHERE run_id = $1 AND node = 'answer') - "
                  "(SELECT ts FROM events WHERE run_id = $1 AND kind = 'wait_started') "
                  "BETWEEN 2.9 AND 4.5",
                  {id}) == "t");

  // Resumed after it failed, the wait is reached afresh: it parks, with a new due time.
  ExitInfo again = keel.Run({"resume", id, "--db", *url}, 60s);
  CHECK_MESSAGE(again.exit_code == 4, again.Describe());
  CHECK(db.Scalar("SELECT status FROM nodes WHERE run_id = $1 AND node = 'answer'", {id}) ==
        "waiting");
  CHECK(db.Scalar("SELECT count(*) FROM events WHERE run_id = $1 AND kind = 'wait_started'",
                  {id}) == "2");
  ExitInfo sent = keel.Run({"signal", id, "answer", "--data", R"("yes")", "--db", *url});
  REQUIRE_MESSAGE(sent.exit_code == 0, sent.Describe());
  bool done = db.WaitFor("SELECT status FROM runs WHERE id = $1", "succeeded", 30s, {id});
  StopWorkers({worker.get()});
  CHECK(done);
  CHECK(db.Scalar("SELECT output_json FROM nodes WHERE run_id = $1 AND node = 'use'", {id}) ==
        R"("yes")");
}

TEST_CASE("three workers racing over twelve parked runs wake each wait once" *
          doctest::timeout(180)) {
  auto url = FreshDbOrSkip("worker_wait_race");
  if (!url) return;
  TempDir dir;
  std::string file = dir.Write("one.lua", kOneWait);
  KeelCli keel(KEEL_BIN, dir.path());
  std::vector<std::string> ids;
  for (int i = 0; i < 12; ++i) ids.push_back(SubmitFile(keel, file, *url));
  std::vector<std::unique_ptr<Subprocess>> workers;
  for (int i = 0; i < 3; ++i) {
    workers.push_back(keel.Start({"worker", "--db", *url, "--concurrency", "4", "--lease", "2s"}));
  }
  Db db = Connect(*url);
  REQUIRE(db.WaitFor("SELECT count(*) FROM runs WHERE status = 'waiting'", "12", 60s));
  // Signals from many processes at once; one run gets two.
  std::vector<std::unique_ptr<Subprocess>> senders;
  for (size_t i = 0; i < ids.size(); ++i) {
    senders.push_back(keel.Start(
        {"signal", ids[i], "go", "--data", std::to_string(i), "--db", *url}));
  }
  auto second = keel.Start({"signal", ids[0], "go", "--data", "99", "--db", *url});
  for (auto& s : senders) CHECK(s->Wait(60s).exit_code == 0);
  // The second signal is kept untaken, or refused once the first finished the run.
  ExitInfo twice = second->Wait(60s);
  const bool kept = twice.exit_code == 0;
  if (!kept) CHECK(twice.err.find("a finished run takes no signals") != std::string::npos);
  bool done = db.WaitFor("SELECT count(*) FROM runs WHERE status = 'succeeded'", "12", 60s);
  StopWorkers(workers);
  REQUIRE(done);
  for (size_t i = 0; i < ids.size(); ++i) {
    CAPTURE(ids[i]);
    CheckInvariants(db, ids[i], 2);
    CHECK(db.Scalar("SELECT count(*) FROM events WHERE run_id = $1 AND kind = 'wait_woken'",
                    {ids[i]}) == "1");
    if (i > 0) {
      CHECK(db.Scalar("SELECT output_json FROM nodes WHERE run_id = $1 AND node = 'done'",
                      {ids[i]}) == std::to_string(i));
    }
  }
  // The run sent two signals took one.
  CHECK(db.Scalar("SELECT count(*) FROM signals WHERE run_id = $1 AND taken_by IS NULL",
                  {ids[0]}) == (kept ? "1" : "0"));
}

TEST_CASE("a cancelled waiting run is never woken" * doctest::timeout(120)) {
  auto url = FreshDbOrSkip("worker_wait_cancel");
  if (!url) return;
  TempDir dir;
  std::string file = dir.Write("one.lua", kOneWait);
  KeelCli keel(KEEL_BIN, dir.path());
  std::string id = RunParked(keel, file, *url);
  auto worker = keel.Start({"worker", "--db", *url, "--lease", "2s"});
  ExitInfo cancelled = keel.Run({"cancel", id, "--db", *url});
  CHECK_MESSAGE(cancelled.exit_code == 0, cancelled.Describe());
  ExitInfo sent = keel.Run({"signal", id, "go", "--db", *url});
  CHECK(sent.exit_code != 0);
  CHECK(sent.err.find("cancelled") != std::string::npos);
  std::this_thread::sleep_for(1500ms);  // several sweeps of the worker
  StopWorkers({worker.get()});
  Db db = Connect(*url);
  CHECK(Status(db, id) == "cancelled");
  CHECK(db.Scalar("SELECT count(*) FROM events WHERE run_id = $1 AND kind = 'wait_woken'",
                  {id}) == "0");
  CHECK(db.Scalar("SELECT count(*) FROM node_queue WHERE run_id = $1", {id}) == "0");
}

}  // namespace
}  // namespace keel::testing
