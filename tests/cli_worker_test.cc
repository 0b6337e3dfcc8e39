// `keel worker` processes against a real PostgreSQL server: many workers
// share a run, a worker killed mid-node has its node finished elsewhere, a
// worker paused past its lease has its late commit discarded. Node outputs
// are the pid of the worker that ran them (the parent of their `sh`), and
// claim_log holds every claim and commit with its attempt, so the tests
// check: one recorded result per node, committed by its current claim.

#include <doctest/doctest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "store/postgres/pg_connection.h"
#include "tests/support/files.h"
#include "tests/support/keel_cli.h"
#include "tests/support/pg_database.h"
#include "tests/support/temp_dir.h"
#include "tests/worker_test_util.h"

namespace keel::testing {
namespace {

using namespace std::chrono_literals;

// `chains` chains of `length` nodes; each node sleeps, then prints its worker's pid.
std::string Chains(int chains, int length, const std::string& sleep) {
  return "local keel = require \"keel\"\n"
         "local spec = {}\n"
         "for i = 1, " + std::to_string(chains * length) + " do\n"
         "  local after = {}\n"
         "  if i > " + std::to_string(chains) + " then after = { \"n\" .. (i - " +
         std::to_string(chains) + ") } end\n"
         "  spec[#spec + 1] = keel.exec(\"n\" .. i) {\n"
         "    after = after,\n"
         "    command = { \"sh\", \"-c\", \"sleep " + sleep + "; echo $PPID\" },\n"
         "    output = \"json\",\n"
         "  }\n"
         "end\n"
         "return keel.workflow \"chains\" (spec)\n";
}

const char kSlow[] = R"lua(local keel = require "keel"
return keel.workflow "slow" {
  keel.exec "slow" { command = { "sh", "-c", "sleep 3; echo $PPID" }, output = "json" },
  keel.fn "after" { after = { "slow" }, run = function(ctx) return ctx.deps.slow end },
}
)lua";

TEST_CASE("three workers run a 200-node workflow, every node recorded once" *
          doctest::timeout(240)) {
  auto url = FreshDbOrSkip("worker_many");
  if (!url) return;
  TempDir dir;
  std::string file = dir.Write("chains.lua", Chains(20, 10, "0.05"));
  KeelCli keel(KEEL_BIN, dir.path());
  std::string id = SubmitFile(keel, file, *url);

  std::vector<std::unique_ptr<Subprocess>> workers;
  for (int i = 0; i < 3; ++i) {
    workers.push_back(keel.Start({"worker", "--db", *url, "--concurrency", "8", "--lease", "5s"}));
  }
  Db db = Connect(*url);
  bool done = db.WaitFor("SELECT status FROM runs WHERE id = $1", "succeeded", 180s, {id});
  StopWorkers(workers, 60s);
  REQUIRE(done);
  CheckInvariants(db, id, 200);
  // With a slot for each of the 20 chains, the roots are all claimed within
  // a few poll periods of the first claim.
  CHECK(db.Scalar("SELECT max(at) - min(at) < interval '2 seconds' FROM claim_log WHERE "
                  "run_id = $1 AND action = 'claim' AND attempt = 1 AND node IN (SELECT 'n' || i "
                  "FROM generate_series(1, 20) i)",
                  {id}) == "t");
  // Every worker took part, and each output is the pid of the one that committed it.
  std::map<std::string, int> by_worker;
  for (auto& w : workers) {
    std::string pid = std::to_string(w->pid());
    by_worker[pid] = std::stoi(
        db.Scalar("SELECT count(*) FROM nodes WHERE run_id = $1 AND output_json = $2", {id, pid}));
    CHECK_MESSAGE(by_worker[pid] > 0, "worker " << pid << " ran nothing");
  }
  CHECK(by_worker.size() == 3);
  CHECK(db.Scalar("SELECT count(*) FROM workers") == "0");  // each unregistered on SIGTERM
}

TEST_CASE("a worker killed mid-node has its node finished by another, its attempts counted on" *
          doctest::timeout(120)) {
  auto url = FreshDbOrSkip("worker_kill");
  if (!url) return;
  TempDir dir;
  std::string file = dir.Write("slow.lua", kSlow);
  KeelCli keel(KEEL_BIN, dir.path());
  std::string id = SubmitFile(keel, file, *url);
  Db db = Connect(*url);

  auto first = keel.Start({"worker", "--db", *url, "--lease", "1s"});
  // Claimed, and its first attempt on record while it runs.
  REQUIRE(db.WaitFor("SELECT count(*) FROM events WHERE run_id = $1 AND node = 'slow' AND "
                     "kind = 'node_started'",
                     "1", 30s, {id}));
  first->Kill();
  auto second = keel.Start({"worker", "--db", *url, "--lease", "1s"});
  bool done = db.WaitFor("SELECT status FROM runs WHERE id = $1", "succeeded", 60s, {id});
  StopWorkers({second.get()});
  REQUIRE(done);
  CheckInvariants(db, id, 2);
  std::string pid = std::to_string(second->pid());
  CHECK(db.Scalar("SELECT output_json FROM nodes WHERE run_id = $1 AND node = 'slow'", {id}) ==
        pid);
  CHECK(db.Scalar("SELECT string_agg(action || ':' || attempt, ',' ORDER BY id) FROM claim_log "
                  "WHERE run_id = $1 AND node = 'slow'",
                  {id}) == "claim:1,requeue:1,claim:2,commit:2");
  CHECK(db.Scalar("SELECT attempts FROM nodes WHERE run_id = $1 AND node = 'slow'", {id}) == "2");
  CHECK(db.Scalar("SELECT string_agg(data_json, ',' ORDER BY seq) FROM events WHERE run_id = $1 "
                  "AND node = 'slow' AND kind = 'node_started'",
                  {id}) == R"({"attempt":1},{"attempt":2})");
}

TEST_CASE("a worker killed mid-map leaves the items it wrote; another runs the rest" *
          doctest::timeout(120)) {
  auto url = FreshDbOrSkip("worker_map");
  if (!url) return;
  TempDir dir;
  std::string file = dir.Write("map.lua", R"lua(local keel = require "keel"
return keel.workflow "mapped" {
  keel.fn "list" { run = function(ctx) local t = {} for i = 1, 30 do t[i] = i end return t end },
  keel.map "items" {
    after = { "list" },
    over = function(ctx) return ctx.deps.list end,
    max_concurrency = 2,
    node = keel.exec { command = { "sh", "-c", "sleep 0.2; echo $PPID" }, output = "json" },
  },
}
)lua");
  KeelCli keel(KEEL_BIN, dir.path());
  std::string id = SubmitFile(keel, file, *url);
  Db db = Connect(*url);

  auto first = keel.Start({"worker", "--db", *url, "--lease", "1s"});
  std::string first_pid = std::to_string(first->pid());
  bool some = WaitUntil(
      [&] {
        return std::stoi(db.Scalar("SELECT count(*) FROM nodes WHERE run_id = $1 AND node LIKE "
                                   "'items[%' AND status = 'succeeded'",
                                   {id})) >= 6;
      },
      60s);
  first->Kill();
  REQUIRE(some);
  int kept = std::stoi(db.Scalar(
      "SELECT count(*) FROM nodes WHERE run_id = $1 AND node LIKE 'items[%' AND "
      "status = 'succeeded'",
      {id}));
  auto second = keel.Start({"worker", "--db", *url, "--lease", "1s"});
  bool done = db.WaitFor("SELECT status FROM runs WHERE id = $1", "succeeded", 60s, {id});
  StopWorkers({second.get()});
  REQUIRE(done);
  CheckInvariants(db, id, 2);
  CHECK(db.Scalar("SELECT count(*) FROM nodes WHERE run_id = $1 AND node LIKE 'items[%' AND "
                  "status = 'succeeded'",
                  {id}) == "30");
  // What the killed worker wrote stayed; the second ran the others.
  int by_first = std::stoi(db.Scalar(
      "SELECT count(*) FROM nodes WHERE run_id = $1 AND node LIKE 'items[%' AND output_json = $2",
      {id, first_pid}));
  CHECK(by_first >= kept);
  CHECK(by_first < 30);
  CHECK(db.Scalar("SELECT string_agg(action || ':' || attempt, ',' ORDER BY id) FROM claim_log "
                  "WHERE run_id = $1 AND node = 'items'",
                  {id}) == "claim:1,requeue:1,claim:2,commit:2");
}

TEST_CASE("a worker paused past its lease has its late commit discarded" *
          doctest::timeout(120)) {
  auto url = FreshDbOrSkip("worker_pause");
  if (!url) return;
  TempDir dir;
  std::string file = dir.Write("slow.lua", kSlow);
  KeelCli keel(KEEL_BIN, dir.path());
  std::string id = SubmitFile(keel, file, *url);
  Db db = Connect(*url);

  auto paused = keel.Start({"worker", "--db", *url, "--lease", "1s"});
  REQUIRE(db.WaitFor("SELECT state FROM node_queue WHERE run_id = $1 AND node = 'slow'", "claimed",
                     30s, {id}));
  kill(paused->pid(), SIGSTOP);
  auto other = keel.Start({"worker", "--db", *url, "--lease", "1s"});
  bool done = db.WaitFor("SELECT status FROM runs WHERE id = $1", "succeeded", 60s, {id});
  kill(paused->pid(), SIGCONT);
  // The paused worker's node finished while it slept. Its late result is
  // either refused at commit (a `superseded` row) or stopped before the
  // commit, when its fenced writes are refused first: either way it changes
  // nothing. Give it time to try.
  const bool refused_at_commit = db.WaitFor(
      "SELECT count(*) FROM claim_log WHERE run_id = $1 AND node = 'slow' AND "
      "action = 'superseded'",
      "1", 10s, {id});
  StopWorkers({paused.get(), other.get()});
  REQUIRE(done);
  CheckInvariants(db, id, 2);
  std::string pid = std::to_string(other->pid());
  CHECK(db.Scalar("SELECT output_json FROM nodes WHERE run_id = $1 AND node = 'slow'", {id}) ==
        pid);
  CHECK(db.Scalar("SELECT output_json FROM nodes WHERE run_id = $1 AND node = 'after'", {id}) ==
        pid);
  CHECK(db.Scalar("SELECT string_agg(action || ':' || attempt, ',' ORDER BY id) FROM claim_log "
                  "WHERE run_id = $1 AND node = 'slow'",
                  {id}) == (refused_at_commit ? "claim:1,requeue:1,claim:2,commit:2,superseded:1"
                                              : "claim:1,requeue:1,claim:2,commit:2"));
}

TEST_CASE("keel run on PostgreSQL works on its run and prints what keel run prints" *
          doctest::timeout(120)) {
  auto url = FreshDbOrSkip("worker_run");
  if (!url) return;
  TempDir dir;
  std::string ok = dir.Write("ok.lua", R"lua(local keel = require "keel"
return keel.workflow "sum" {
  params = { x = 1 },
  keel.fn "a" { run = function(ctx) return ctx.params.x end },
  keel.fn "b" { after = { "a" }, run = function(ctx) return ctx.deps.a + 1 end },
  keel.fn "c" { after = { "a" }, run = function(ctx) return ctx.deps.a + 10 end },
  keel.fn "d" { after = { "b", "c" }, run = function(ctx) return ctx.deps.b + ctx.deps.c end },
}
)lua");
  std::string bad = dir.Write("bad.lua", R"lua(local keel = require "keel"
return keel.workflow "bad" {
  keel.fn "a" { run = function(ctx) error("boom") end },
  keel.fn "b" { after = { "a" }, run = function(ctx) return 1 end },
  keel.fn "opt" { optional = true, run = function(ctx) error("meh") end },
}
)lua");
  KeelCli keel(KEEL_BIN, dir.path());
  ExitInfo run = keel.Run({"run", ok, "--db", *url, "-p", "x=5"});
  CHECK_MESSAGE(run.exit_code == 0, run.Describe());
  CHECK(run.out.find("succeeded") != std::string::npos);
  CHECK(run.out.find("(4/4 nodes)") != std::string::npos);
  CHECK(run.out.find("d = 21") != std::string::npos);

  ExitInfo failed = keel.Run({"run", bad, "--db", *url});
  CHECK_MESSAGE(failed.exit_code == 1, failed.Describe());
  CHECK(failed.out.find("error: a: ") != std::string::npos);

  // --no-work leaves the run to a worker.
  auto waiting = keel.Start({"run", ok, "--db", *url, "--no-work"});
  CHECK(waiting->WaitForStderr("waiting for workers", 30s));
  CHECK_FALSE(waiting->Exited());
  auto worker = keel.Start({"worker", "--db", *url});
  ExitInfo waited = waiting->Wait(60s);
  CHECK_MESSAGE(waited.exit_code == 0, waited.Describe());
  CHECK(waited.out.find("d = 13") != std::string::npos);
  StopWorkers({worker.get()});
}

TEST_CASE("keel resume of a failed distributed run queues its failed nodes again" *
          doctest::timeout(120)) {
  auto url = FreshDbOrSkip("worker_resume");
  if (!url) return;
  TempDir dir;
  std::string go = dir.Path("go");
  std::string file = dir.Write("gate.lua", R"lua(local keel = require "keel"
local GO = ")lua" + go + R"lua("
return keel.workflow "gate" {
  keel.fn "a" { run = function(ctx) return 1 end },
  keel.fn "b" { after = { "a" }, run = function(ctx)
    local f = io.open(GO, "r")
    if not f then error("no go") end
    f:close()
    return ctx.deps.a + 1
  end },
  keel.fn "c" { after = { "b" }, run = function(ctx) return ctx.deps.b + 1 end },
}
)lua");
  KeelCli keel(KEEL_BIN, dir.path());
  ExitInfo failed = keel.Run({"run", file, "--db", *url});
  CHECK_MESSAGE(failed.exit_code == 1, failed.Describe());
  std::string id = RunIdFromStderr(failed.err);
  REQUIRE_FALSE(id.empty());
  Db db = Connect(*url);
  CHECK(db.Scalar("SELECT status FROM nodes WHERE run_id = $1 AND node = 'c'", {id}) ==
        "cancelled");
  WriteFile(go, "");
  ExitInfo resumed = keel.Run({"resume", id, "--db", *url});
  CHECK_MESSAGE(resumed.exit_code == 0, resumed.Describe());
  CHECK(resumed.err.find("run " + id + " resumed: 1 of 3 nodes kept") != std::string::npos);
  CHECK(resumed.out.find("c = 3") != std::string::npos);
  CHECK(db.Scalar("SELECT status || ' ' || epoch FROM runs WHERE id = $1", {id}) ==
        "succeeded 2");
  CHECK(db.Scalar("SELECT count(*) FROM claim_log WHERE run_id = $1 AND node = 'a' AND "
                  "action = 'commit'",
                  {id}) == "1");
  ExitInfo again = keel.Run({"resume", id, "--db", *url});
  CHECK(again.err.find("already succeeded") != std::string::npos);
}

TEST_CASE("keel resume --from of a distributed run runs that node and those after it again" *
          doctest::timeout(120)) {
  auto url = FreshDbOrSkip("worker_from");
  if (!url) return;
  TempDir dir;
  std::string file = dir.Write("chain.lua", R"lua(local keel = require "keel"
return keel.workflow "chain" {
  keel.fn "a" { run = function(ctx) return os.time() end },
  keel.fn "b" { after = { "a" }, run = function(ctx) return ctx.deps.a end },
  keel.fn "c" { after = { "b" }, run = function(ctx) return ctx.deps.b end },
  keel.fn "d" { after = { "a" }, run = function(ctx) return 4 end },
}
)lua");
  KeelCli keel(KEEL_BIN, dir.path());
  ExitInfo ran = keel.Run({"run", file, "--db", *url});
  REQUIRE_MESSAGE(ran.exit_code == 0, ran.Describe());
  std::string id = RunIdFromStderr(ran.err);
  Db db = Connect(*url);
  ExitInfo bad = keel.Run({"resume", id, "--db", *url, "--from", "nope"});
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.find("nope") != std::string::npos);
  ExitInfo again = keel.Run({"resume", id, "--db", *url, "--from", "b"});
  CHECK_MESSAGE(again.exit_code == 0, again.Describe());
  CHECK(again.err.find("2 of 4 nodes kept") != std::string::npos);
  CHECK(db.Scalar("SELECT status FROM runs WHERE id = $1", {id}) == "succeeded");
  // a and d ran once, b and c twice; the rerun is recorded.
  CHECK(db.Scalar("SELECT string_agg(node || ':' || n, ',' ORDER BY node) FROM (SELECT node, "
                  "count(*) n FROM claim_log WHERE run_id = $1 AND action = 'commit' GROUP BY "
                  "node) x",
                  {id}) == "a:1,b:2,c:2,d:1");
  CHECK(db.Scalar("SELECT count(*) FROM events WHERE run_id = $1 AND kind = 'rerun'", {id}) ==
        "1");
  // No two claims of a node share an attempt number, the chained ones of
  // the rerun too.
  CHECK(db.Scalar("SELECT count(*) FROM (SELECT node FROM claim_log WHERE run_id = $1 AND "
                  "action = 'claim' GROUP BY node, attempt HAVING count(*) > 1) x",
                  {id}) == "0");
  CHECK(db.Scalar("SELECT count(*) FROM nodes WHERE run_id = $1 AND status = 'succeeded'", {id}) ==
        "4");
}

TEST_CASE("keel cancel stops a distributed run's nodes on its workers" * doctest::timeout(120)) {
  auto url = FreshDbOrSkip("worker_cancel");
  if (!url) return;
  TempDir dir;
  std::string marker = dir.Path("ran-to-the-end");
  std::string file = dir.Write("long.lua", R"lua(local keel = require "keel"
local spec = {}
for i = 1, 3 do
  spec[#spec + 1] = keel.exec("n" .. i) {
    command = { "sh", "-c", "sleep 20; echo done >> )lua" + marker + R"lua(" },
  }
end
spec[#spec + 1] = keel.fn "after" { after = { "n1" }, run = function() return 1 end }
return keel.workflow "long" (spec)
)lua");
  KeelCli keel(KEEL_BIN, dir.path());
  std::string id = SubmitFile(keel, file, *url);
  Db db = Connect(*url);
  auto worker = keel.Start({"worker", "--db", *url});
  REQUIRE(db.WaitFor("SELECT count(*) FROM node_queue WHERE run_id = $1 AND state = 'claimed'",
                     "3", 30s, {id}));
  ExitInfo cancelled = keel.Run({"cancel", id, "--db", *url});
  CHECK_MESSAGE(cancelled.exit_code == 0, cancelled.Describe());
  CHECK(db.Scalar("SELECT status FROM runs WHERE id = $1", {id}) == "cancelled");
  CHECK(db.Scalar("SELECT count(*) FROM node_queue WHERE run_id = $1", {id}) == "0");
  // The worker stops the three nodes at its next sweep, long before they end.
  CHECK(worker->WaitForStderr("its claim ended (cancelled", 10s));
  CHECK(WaitUntil(
      [&] {
        return db.Scalar("SELECT count(*) FROM claim_log WHERE run_id = $1 AND action IN "
                         "('superseded', 'cancel')",
                         {id}) == "3";
      },
      10s));
  StopWorkers({worker.get()});
  // Their processes are gone, not left to run to the end.
  CHECK(WaitUntil(
      [&] {
        Subprocess pgrep("/usr/bin/pgrep", {{"-f", marker}});
        return pgrep.Wait(10s).exit_code == 1;
      },
      10s));
  CHECK_FALSE(ReadFile(marker).has_value());
  CHECK(db.Scalar("SELECT count(*) FROM nodes WHERE run_id = $1 AND status = 'succeeded'", {id}) ==
        "0");
  CHECK(db.Scalar("SELECT count(*) FROM claim_log WHERE run_id = $1 AND action = 'commit'",
                  {id}) == "0");
}

TEST_CASE("a circuit breaker opened on one worker holds on every worker" * doctest::timeout(120)) {
  auto url = FreshDbOrSkip("worker_breaker");
  if (!url) return;
  TempDir dir;
  std::string ran = dir.Path("ran");
  std::filesystem::create_directories(ran);
  // Twelve independent calls of one failing dependency, behind one breaker
  // that opens after three failures in a row.
  std::string file = dir.Write("flaky.lua", R"lua(local keel = require "keel"
local spec = {}
for i = 1, 12 do
  spec[#spec + 1] = keel.exec("n" .. i) {
    command = { "sh", "-c", "touch )lua" + ran + R"lua(/$$; sleep 0.3; exit 1" },
    circuit = { key = "flaky", failures = 3, cooldown = 600 },
    optional = true,
  }
end
return keel.workflow "flaky" (spec)
)lua");
  KeelCli keel(KEEL_BIN, dir.path());
  std::string id = SubmitFile(keel, file, *url);
  Db db = Connect(*url);
  std::vector<std::unique_ptr<Subprocess>> workers;
  for (int i = 0; i < 2; ++i) {
    workers.push_back(keel.Start({"worker", "--db", *url, "--concurrency", "1"}));
  }
  bool done = db.WaitFor("SELECT status FROM runs WHERE id = $1", "degraded", 60s, {id});
  StopWorkers(workers);
  REQUIRE(done);
  // Both workers ran calls; together they let through the three failures
  // that opened it and those already under way (one per worker), not three
  // each.
  CHECK(db.Scalar("SELECT count(DISTINCT worker_id) FROM claim_log WHERE run_id = $1 AND "
                  "action = 'commit'",
                  {id}) == "2");
  auto it = std::filesystem::directory_iterator(ran);
  auto calls = std::distance(it, std::filesystem::directory_iterator());
  CHECK(calls >= 3);
  CHECK(calls <= 4);
  CHECK(db.Scalar("SELECT state FROM breakers WHERE key = 'flaky'") == "open");
  CHECK(db.Scalar("SELECT count(*) FROM nodes WHERE run_id = $1 AND error_kind = 'circuit_open'",
                  {id}) == std::to_string(12 - calls));
}

TEST_CASE("keel worker refuses a SQLite database and bad flags" * doctest::timeout(60)) {
  TempDir dir;
  KeelCli keel(KEEL_BIN, dir.path());
  ExitInfo sqlite = keel.Run({"worker", "--db", "keel.db"});
  CHECK(sqlite.exit_code == 2);
  CHECK(sqlite.err.find("needs a PostgreSQL database") != std::string::npos);
  ExitInfo lease = keel.Run({"worker", "--db", "postgresql://x@127.0.0.1:1/x", "--lease", "soon"});
  CHECK(lease.exit_code == 2);
  CHECK(lease.err.find("--lease") != std::string::npos);
  ExitInfo concurrency = keel.Run({"worker", "--db", "postgresql://x@127.0.0.1:1/x",
                                   "--concurrency", "0"});
  CHECK(concurrency.exit_code == 2);
  CHECK(concurrency.err.find("--concurrency") != std::string::npos);
  ExitInfo unreachable =
      keel.Run({"worker", "--db", "postgresql://x:secret@127.0.0.1:1/x"}, 30s);
  CHECK(unreachable.exit_code == 2);
  CHECK(unreachable.err.find("secret") == std::string::npos);
}

}  // namespace
}  // namespace keel::testing
