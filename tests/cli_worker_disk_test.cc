// `keel worker` processes against a PostgreSQL server whose data directory
// sits on a small real tmpfs that fills mid-run: the workers report the
// server's disk-full error without a flood, keep no node, record nothing
// twice (the claim_log invariants of tests/worker_test_util.h), and the run
// finishes once the filler file is deleted. Breaker updates and concurrency
// lanes written to the full database fail with the server's error and
// change nothing.
//
// The server is this test's own: initdb'd on the tmpfs with 1 MiB WAL
// segments, its WAL pre-grown so that it recycles segments rather than
// creating one while the disk is full (PostgreSQL stops when it cannot
// write its WAL; a full data file only fails the statement). Mounting needs
// root: otherwise, or without PostgreSQL, the test is skipped with a message.

#include <doctest/doctest.h>
#include <pwd.h>
#include <signal.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "store/postgres/pg_store.h"
#include "tests/support/keel_cli.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tmpfs.h"
#include "tests/worker_test_util.h"

namespace keel::testing {
namespace {

using namespace std::chrono_literals;

constexpr int kNodes = 16;

// `args` run as the postgres user (initdb and pg_ctl refuse root).
ExitInfo RunAs(const std::vector<std::string>& args) {
  SpawnOptions options;
  options.args = {"-u", "postgres", "--"};
  options.args.insert(options.args.end(), args.begin(), args.end());
  return Subprocess("/usr/sbin/runuser", options).Wait(120s);
}

// What shell `command` prints, trimmed.
std::string Sh(const std::string& command) {
  SpawnOptions options;
  options.args = {"-c", command};
  return Trim(Subprocess("/bin/sh", options).Wait(30s).out);
}

// A PostgreSQL server of the test's own, its data directory on `fs`;
// stopped (at once: the tmpfs goes with it) on destruction. For the test's
// thread.
class DiskServer {
 public:
  // *why says what is missing when it cannot start.
  DiskServer(Tmpfs* fs, const TempDir& logs, std::string* why) : fs_(fs) {
    bin_ = Sh("ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1");
    if (bin_.empty()) {
      *why = "PostgreSQL is not installed";
      return;
    }
    log_ = logs.Path("server.log");
    Sh("touch " + log_ + " && chown postgres " + log_);
    ExitInfo init = RunAs({bin_ + "/initdb", "-D", fs->Path("pgdata"), "-A", "trust", "-U", "keel",
                           "--no-sync", "-E", "UTF8", "--locale=C.UTF-8", "--wal-segsize=1"});
    if (init.exit_code != 0) {
      *why = "initdb: " + init.Describe();
      return;
    }
    port_ =
        Sh("python3 -c 'import socket; s=socket.socket(); s.bind((\"127.0.0.1\",0)); "
           "print(s.getsockname()[1])'");
    // Durability off as in tests/support/pg_server.sh; a WAL of a fixed 32 MiB.
    std::string conf = "port = " + port_ +
                       "\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '" + fs->dir() +
                       "'\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                       "max_wal_size = 32MB\nmin_wal_size = 32MB\nmax_connections = 100\n";
    Sh("printf '%s' \"" + conf + "\" >> " + fs->Path("pgdata/postgresql.conf"));
    ExitInfo started =
        RunAs({bin_ + "/pg_ctl", "-D", fs->Path("pgdata"), "-l", log_, "-w", "-t", "60", "start"});
    if (started.exit_code != 0) {
      *why = "pg_ctl start: " + started.Describe();
      return;
    }
    running_ = true;
  }
  ~DiskServer() {
    if (running_)
      (void)RunAs({bin_ + "/pg_ctl", "-D", fs_->Path("pgdata"), "-m", "immediate", "-w", "stop"});
  }
  DiskServer(const DiskServer&) = delete;
  DiskServer& operator=(const DiskServer&) = delete;

  bool running() const { return running_; }
  std::string url() const { return "postgresql://keel@127.0.0.1:" + port_ + "/postgres"; }
  std::string Log() const { return ReadFile(log_).value_or(""); }

 private:
  Tmpfs* fs_;
  std::string bin_;
  std::string log_;
  std::string port_;
  bool running_ = false;
};

// `n` independent nodes; each sleeps `sleep` seconds, then prints 6 KiB of
// random text (new heap and TOAST pages for every commit).
std::string Wide(int n, const std::string& sleep) {
  return "local keel = require \"keel\"\n"
         "local spec = {}\n"
         "for i = 1, " +
         std::to_string(n) +
         " do\n"
         "  spec[#spec + 1] = keel.exec(\"n\" .. i) {\n"
         "    command = { \"sh\", \"-c\", \"sleep " +
         sleep +
         "; head -c 4500 /dev/urandom | base64 -w0\" },\n"
         "  }\n"
         "end\n"
         "return keel.workflow \"wide\" (spec)\n";
}

// Lines of `err` that tell of the full disk.
int DiskFullLines(const std::string& err) {
  int n = 0;
  size_t start = 0;
  while (start < err.size()) {
    size_t end = err.find('\n', start);
    if (end == std::string::npos) end = err.size();
    const std::string line = err.substr(start, end - start);
    if (line.find("No space left on device") != std::string::npos) ++n;
    start = end + 1;
  }
  return n;
}

}  // namespace

TEST_CASE(
    "the PostgreSQL disk fills under running workers: no node lost or recorded twice, "
    "and the run finishes once space frees" *
    doctest::timeout(120)) {
  std::string why;
  const passwd* postgres = getpwnam("postgres");
  auto fs = postgres ? Tmpfs::Mount("96m", &why, static_cast<int>(postgres->pw_uid)) : nullptr;
  if (!fs) {
    MESSAGE("skipped: cannot mount a tmpfs for PostgreSQL ("
            << (postgres ? why : "no postgres user") << ")");
    return;
  }
  TempDir dir;
  Sh("chown postgres " + dir.path());
  DiskServer server(fs.get(), dir, &why);
  if (!server.running()) {
    MESSAGE("skipped: " << why);
    return;
  }
  Db db = Connect(server.url());
  // Pre-grow the WAL: its segments are recycled from now on.
  db.Scalar("CREATE TABLE warm AS SELECT repeat('x', 1000) AS x FROM generate_series(1, 26000)");
  db.Scalar("DROP TABLE warm");
  db.Scalar("CHECKPOINT");
  db.Scalar("CHECKPOINT");

  std::string file = dir.Write("wide.lua", Wide(kNodes, "0.4"));
  KeelCli keel(KEEL_BIN, dir.path());
  std::string id = SubmitFile(keel, file, server.url());
  std::vector<std::unique_ptr<Subprocess>> workers;
  for (int i = 0; i < 2; ++i) {
    workers.push_back(
        keel.Start({"worker", "--db", server.url(), "--concurrency", "2", "--lease", "3s"}));
  }
  auto commits = [&] {
    return std::stoi(
        db.Scalar("SELECT count(*) FROM claim_log WHERE run_id = $1 AND action = 'commit'", {id}));
  };
  REQUIRE(WaitUntil([&] { return commits() >= 3; }, 60s));
  REQUIRE(fs->Fill());
  const int committed_at_fill = commits();

  // While the disk is full: the shared state a run writes fails with the
  // server's error and changes nothing.
  {
    auto store = PostgresStore::Open(server.url(), PostgresStoreOptions{});
    REQUIRE_MESSAGE(store.ok(), store.status().ToString());
    auto breaker = (*store)->UpdateBreaker("provider:full", [](BreakerSnapshot& s) {
      s.calls += 1;
      for (int k = 0; k < 3000; ++k) s.recent.push_back(WindowCall{1.7e9 + k * 0.37, 1});
    });
    REQUIRE_FALSE(breaker.ok());
    CAPTURE(breaker.status().message());
    CHECK(breaker.status().message().find("No space left on device") != std::string::npos);
    CHECK(breaker.status().message().find("breaker provider:full") != std::string::npos);
    auto lanes = (*store)->HoldSlots("provider:full:concurrency", "me", 1, 2, 30, 0);
    REQUIRE_FALSE(lanes.ok());
    CAPTURE(lanes.status().message());
    CHECK(lanes.status().message().find("No space left on device") != std::string::npos);
    CHECK(lanes.status().kind() == ErrorKind::kTransient);
    CHECK(db.Scalar("SELECT count(*) FROM breakers") == "0");
    CHECK(db.Scalar("SELECT count(*) FROM lanes") == "0");
  }
  std::this_thread::sleep_for(8s);  // more than two leases
  const int committed_while_full = commits() - committed_at_fill;
  CHECK(db.Scalar("SELECT status FROM runs WHERE id = $1", {id}) == "running");

  fs->Free();
  bool done = db.WaitFor("SELECT status FROM runs WHERE id = $1", "succeeded", 60s, {id});
  for (auto& w : workers) kill(w->pid(), SIGTERM);
  std::vector<std::string> errs;
  for (auto& w : workers) {
    ExitInfo exit = w->Wait(30s);
    CHECK_MESSAGE(exit.exit_code == 0, exit.Describe());
    errs.push_back(exit.err);
  }
  MESSAGE(committed_while_full << " commits went through while the disk was full");
  for (const std::string& err : errs) {
    CAPTURE(err);
    CHECK(DiskFullLines(err) >= 1);  // said
    CHECK(DiskFullLines(err) <= 2);  // not a flood
  }
  REQUIRE_MESSAGE(done, server.Log());
  CheckInvariants(db, id, kNodes, /*prompt=*/false);
  CHECK(db.Scalar("SELECT count(*) FROM node_queue WHERE run_id = $1 AND state = 'claimed'",
                  {id}) == "0");
  CHECK(db.Scalar("SELECT count(*) FROM nodes WHERE run_id = $1", {id}) == std::to_string(kNodes));
  // The breaker and the lane work again.
  auto store = PostgresStore::Open(server.url(), PostgresStoreOptions{});
  REQUIRE(store.ok());
  auto breaker = (*store)->UpdateBreaker("provider:full", [](BreakerSnapshot& s) { ++s.calls; });
  REQUIRE_MESSAGE(breaker.ok(), breaker.status().ToString());
  CHECK(breaker->calls == 1);
  auto lanes = (*store)->HoldSlots("provider:full:concurrency", "me", 1, 2, 30, 0);
  REQUIRE_MESSAGE(lanes.ok(), lanes.status().ToString());
  CHECK(*lanes == 1);
  CHECK(server.Log().find("PANIC") == std::string::npos);
}

}  // namespace keel::testing
