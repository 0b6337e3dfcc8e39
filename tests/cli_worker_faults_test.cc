// `keel worker` processes through network and server faults, against a
// real PostgreSQL server: a worker on another "host" (a network namespace
// talking TCP to the server) cut off by a partition stops its own nodes
// after a lease while a worker on this host takes them over, and changes
// nothing when the partition heals; a server restart and connections the
// server drops mid-run cost the run nothing. Node outputs are the pid of the
// worker that ran them; claim_log holds every claim and commit with its
// attempt, and the invariants of tests/worker_test_util.h are checked.

#include <doctest/doctest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/keel_cli.h"
#include "tests/support/mock_llm_server.h"
#include "tests/support/netns.h"
#include "tests/support/pg_database.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"
#include "tests/worker_test_util.h"

namespace keel::testing {
namespace {

using namespace std::chrono_literals;

// `n` independent nodes; each sleeps `sleep` seconds, then prints its
// worker's pid. With `started` (a directory), each first leaves a file there.
std::string Wide(int n, const std::string& sleep, const std::string& started = "") {
  std::string mark = started.empty() ? "" : "touch " + started + "/$$; ";
  return "local keel = require \"keel\"\n"
         "local spec = {}\n"
         "for i = 1, " + std::to_string(n) + " do\n"
         "  spec[#spec + 1] = keel.exec(\"n\" .. i) {\n"
         "    command = { \"sh\", \"-c\", \"" + mark + "sleep " + sleep + "; echo $PPID\" },\n"
         "    output = \"json\",\n"
         "  }\n"
         "end\n"
         "return keel.workflow \"wide\" (spec)\n";
}

// `url` with its host replaced by `host`.
std::string WithHost(const std::string& url, const std::string& host) {
  size_t at = url.find('@');
  size_t start = at == std::string::npos ? url.find("://") + 3 : at + 1;
  size_t end = url.find(':', start);
  return url.substr(0, start) + host + url.substr(end);
}

// A throwaway server of this test's own (tests/support/pg_server.sh), so it
// can be restarted without disturbing the tests sharing the fixture's.
class OwnServer {
 public:
  OwnServer() : dir_(std::make_unique<TempDir>()) {
    ExitInfo started = Sh({"start", dir_->path()});
    ok_ = started.exit_code == 0;
    if (ok_) url_ = Trim(started.out);
  }
  ~OwnServer() { (void)Sh({"stop", dir_->path()}); }
  bool ok() const { return ok_; }
  const std::string& url() const { return url_; }
  ExitInfo Restart() {
    std::string data = Trim(ReadFile(dir_->path() + "/data_dir").value_or(""));
    Subprocess ctl("/usr/sbin/runuser",
                   {{"-u", "postgres", "--", PgBin() + "/pg_ctl", "-D", data + "/pgdata", "-m",
                     "fast", "-w", "-l", data + "/server.log", "restart"}});
    return ctl.Wait(120s);
  }

 private:
  static std::string PgBin() {
    Subprocess ls("/bin/sh", {{"-c", "ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1"}});
    return Trim(ls.Wait(10s).out);
  }
  static ExitInfo Sh(const std::vector<std::string>& args) {
    std::vector<std::string> all{KEEL_PG_SERVER_SH};
    all.insert(all.end(), args.begin(), args.end());
    Subprocess sh("/bin/sh", {all});
    return sh.Wait(120s);
  }

  std::unique_ptr<TempDir> dir_;
  bool ok_ = false;
  std::string url_;
};

TEST_CASE("a worker cut off by a partition stops its nodes after a lease; another finishes "
          "them; its late work changes nothing" *
          doctest::timeout(180)) {
  auto url = FreshDbOrSkip("worker_partition");
  if (!url) return;
  auto ns = NetNamespace::Create(0);
  if (!ns) {
    MESSAGE("no network namespaces here (needs root, ip and iptables)");
    return;
  }
  TempDir dir;
  std::string started = dir.Path("started");
  std::filesystem::create_directories(started);
  std::string file = dir.Write("wide.lua", Wide(4, "6", started));
  KeelCli keel(KEEL_BIN, dir.path());
  std::string id = SubmitFile(keel, file, *url);
  Db db = Connect(*url);

  // The far worker reaches the server over TCP through the namespace's link.
  std::string far_url = WithHost(*url, ns->host_ip());
  Subprocess far(ns->Program(),
                 {ns->Args(KEEL_BIN, {"worker", "--db", far_url, "--lease", "3s"}), dir.path()});
  // All four nodes run on the far worker before the cut.
  REQUIRE(WaitUntil(
      [&] {
        auto it = std::filesystem::directory_iterator(started);
        return std::distance(it, std::filesystem::directory_iterator()) == 4;
      },
      30s));
  std::string far_worker = db.Scalar("SELECT worker_id FROM node_queue WHERE run_id = $1 LIMIT 1",
                                     {id});
  ns->Partition(true);
  auto near = keel.Start({"worker", "--db", *url, "--lease", "3s"});
  // Cut off, the far worker gives its nodes up a lease after its last
  // heartbeat; the near one re-queues them once the lease is over and runs them.
  CHECK_MESSAGE(far.WaitForStderr("stopped 4 node(s): cannot reach the database for a whole lease",
                                  30s),
                far.Stderr());
  bool done = db.WaitFor("SELECT status FROM runs WHERE id = $1", "succeeded", 60s, {id});
  ns->Partition(false);
  // Healed, the far worker finds its claims gone: nothing of it is committed.
  std::this_thread::sleep_for(3s);
  StopWorkers({&far, near.get()});
  REQUIRE_MESSAGE(done, db.Scalar("SELECT string_agg(node || ':' || action || ':' || attempt, ' ' "
                                  "ORDER BY id) FROM claim_log WHERE run_id = $1",
                                  {id}));
  CheckInvariants(db, id, 4);
  std::string pid = std::to_string(near->pid());
  CHECK(db.Scalar("SELECT count(*) FROM nodes WHERE run_id = $1 AND output_json = $2", {id, pid}) ==
        "4");
  CHECK(db.Scalar("SELECT count(*) FROM claim_log WHERE run_id = $1 AND worker_id = $2 AND "
                  "action = 'commit'",
                  {id, far_worker}) == "0");
  CHECK(db.Scalar("SELECT count(*) FROM claim_log WHERE run_id = $1 AND action = 'requeue'",
                  {id}) == "4");
}

TEST_CASE("a worker killed between model calls: its nodes go on elsewhere without paying "
          "again for the calls that finished" *
          doctest::timeout(180)) {
  auto url = FreshDbOrSkip("worker_calls");
  if (!url) return;
  MockLlmServer llm(MOCK_LLM_BIN, {"--latency", "1200"});
  TempDir dir;
  // Four nodes at once, each with three calls: every sweep writes the
  // checkpoints of each of them, not of one.
  std::string file = dir.Write("calls.lua", R"lua(local keel = require "keel"
keel.provider "llm" { kind = "openai", base_url = ")lua" + llm.url() + R"lua(", model = "mock-1" }
local spec = {}
for n = 1, 4 do
  spec[n] = keel.fn ("talk" .. n) { run = function(ctx)
    local said = {}
    for i = 1, 3 do said[i] = keel.llm { provider = "llm", prompt = n .. " turn " .. i }.text end
    return #said
  end }
end
return keel.workflow "calls" (spec)
)lua");
  KeelCli keel(KEEL_BIN, dir.path());
  std::string id = SubmitFile(keel, file, *url);
  Db db = Connect(*url);
  auto first = keel.Start({"worker", "--db", *url});
  // Two calls of each node finished and their checkpoints written (a sweep
  // writes them while the nodes run): the worker dies before the third
  // calls are answered.
  REQUIRE(db.WaitFor("SELECT count(*) FROM (SELECT node FROM events WHERE run_id = $1 AND "
                     "kind = 'checkpoint' GROUP BY node HAVING count(*) >= 2) t",
                     "4", 60s, {id}));
  kill(first->pid(), SIGKILL);
  first->Wait(10s);
  auto second = keel.Start({"worker", "--db", *url});
  bool done = db.WaitFor("SELECT status FROM runs WHERE id = $1", "succeeded", 60s, {id});
  StopWorkers({second.get()});
  REQUIRE(done);
  CheckInvariants(db, id, 4);
  Json log = llm.Log();
  std::map<std::string, int> sent;
  for (size_t i = 0; i < log.Size(); ++i) ++sent[log[i]["user"].Str()];
  for (int n = 1; n <= 4; ++n) {
    const std::string node = "talk" + std::to_string(n), prefix = std::to_string(n) + " turn ";
    CAPTURE(node);
    CHECK(db.Scalar("SELECT output_json FROM nodes WHERE run_id = $1 AND node = $2",
                    {id, node}) == "3");
    CHECK(sent[prefix + "1"] == 1);  // answered from the checkpoints, not sent again
    CHECK(sent[prefix + "2"] == 1);
    CHECK(sent[prefix + "3"] >= 1);
    CHECK(sent[prefix + "3"] <= 2);  // the first worker may have sent it before it died
  }
}

TEST_CASE("connections the server drops mid-run cost the run nothing" * doctest::timeout(180)) {
  auto url = FreshDbOrSkip("worker_drops");
  if (!url) return;
  TempDir dir;
  std::string file = dir.Write("wide.lua", Wide(40, "0.3"));
  KeelCli keel(KEEL_BIN, dir.path());
  std::string id = SubmitFile(keel, file, *url);
  Db db = Connect(*url);
  std::vector<std::unique_ptr<Subprocess>> workers;
  for (int i = 0; i < 2; ++i) {
    workers.push_back(keel.Start({"worker", "--db", *url, "--concurrency", "4", "--lease", "10s"}));
  }
  // Every other connection to this database is killed, five times over.
  for (int round = 0; round < 5; ++round) {
    std::this_thread::sleep_for(600ms);
    db.Scalar("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "
              "datname = current_database() AND pid <> pg_backend_pid()");
  }
  bool done = db.WaitFor("SELECT status FROM runs WHERE id = $1", "succeeded", 90s, {id});
  StopWorkers(workers);
  REQUIRE(done);
  CheckInvariants(db, id, 40);
}

TEST_CASE("a database that refuses writes: workers say so, lose no node, and go on when it "
          "takes writes again" *
          doctest::timeout(180)) {
  auto url = FreshDbOrSkip("worker_read_only");
  if (!url) return;
  TempDir dir;
  std::string file = dir.Write("wide.lua", Wide(6, "1"));
  KeelCli keel(KEEL_BIN, dir.path());
  std::string id = SubmitFile(keel, file, *url);
  Db db = Connect(*url);
  const std::string name = db.Scalar("SELECT current_database()");
  auto read_only = [&](bool on) {
    db.Scalar("ALTER DATABASE \"" + name + "\" SET default_transaction_read_only = " +
              (on ? "on" : "off"));
    // Sessions keep the setting they started with: end the others.
    db.Scalar("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "
              "datname = current_database() AND pid <> pg_backend_pid()");
  };
  auto worker = keel.Start({"worker", "--db", *url, "--concurrency", "2", "--lease", "3s"});
  REQUIRE(db.WaitFor("SELECT count(*) > 0 FROM node_queue WHERE run_id = $1 AND state = 'claimed'",
                     "t", 20s, {id}));
  read_only(true);
  // A worker started now is refused at once, with the server's reason.
  ExitInfo refused = keel.Run({"worker", "--db", *url, "--lease", "3s"});
  CHECK(refused.exit_code == 2);
  CHECK(refused.err.find("read-only") != std::string::npos);
  // The running one reports each commit refused and keeps going.
  std::this_thread::sleep_for(5s);
  CHECK(db.Scalar("SELECT status FROM runs WHERE id = $1", {id}) == "running");
  read_only(false);
  bool done = db.WaitFor("SELECT status FROM runs WHERE id = $1", "succeeded", 60s, {id});
  ExitInfo exit = StopWorkers({worker.get()})[0];
  CHECK_MESSAGE(exit.err.find("read-only") != std::string::npos, exit.err);
  REQUIRE(done);
  CheckInvariants(db, id, 6, /*prompt=*/false);
}

TEST_CASE("a PostgreSQL restart mid-run: the workers reconnect and the run finishes" *
          doctest::timeout(240)) {
  if (!test::PgServerUrl()) {
    MESSAGE("no PostgreSQL server");
    return;
  }
  OwnServer server;
  REQUIRE(server.ok());
  TempDir dir;
  std::string file = dir.Write("wide.lua", Wide(30, "0.5"));
  KeelCli keel(KEEL_BIN, dir.path());
  std::string id = SubmitFile(keel, file, server.url());
  std::vector<std::unique_ptr<Subprocess>> workers;
  for (int i = 0; i < 2; ++i) {
    workers.push_back(
        keel.Start({"worker", "--db", server.url(), "--concurrency", "3", "--lease", "20s"}));
  }
  Db db = Connect(server.url());
  REQUIRE(WaitUntil(
      [&] {
        return std::stoi(db.Scalar("SELECT count(*) FROM claim_log WHERE run_id = $1 AND "
                                   "action = 'commit'",
                                   {id})) >= 6;
      },
      60s));
  ExitInfo restarted = server.Restart();
  REQUIRE_MESSAGE(restarted.exit_code == 0, restarted.Describe());
  bool done = db.WaitFor("SELECT status FROM runs WHERE id = $1", "succeeded", 120s, {id});
  StopWorkers(workers, 60s);
  REQUIRE(done);
  CheckInvariants(db, id, 30);
}

}  // namespace
}  // namespace keel::testing
