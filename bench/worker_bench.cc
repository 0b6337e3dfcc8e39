// Distributed execution on PostgreSQL (keel worker):
//  1. claim + fenced commit per node (store/postgres/pg_node_queue.h: each
//     commit claims the next node, as a worker's slot does) against
//     a bare SKIP LOCKED queue loop (one SELECT ... FOR UPDATE SKIP LOCKED +
//     one UPDATE per item, in a transaction) on the same server; ratio printed;
//  2. throughput of N nodes of 10 ms sleep run by 1, 2 and 4 `keel worker`
//     processes of 16 slots each, with the machine's CPU use meanwhile
//     (all workers and the server share this machine's cores: once they
//     are busy, more workers cannot add throughput);
//  3. the same with 100 ms sleeps, where 16 slots bound one worker well
//     below the machine's capacity, so workers add throughput as on hosts
//     of their own.
//
//   worker_bench            2,000 nodes for (1), 10,000 for (2), 2,000 for (3)
//   worker_bench --quick    200, 200 and 200 (a smoke test)
//   worker_bench --overhead (1) alone
// (1) runs the bare loop and keel's in turns of 100 items, so both meet the
// same moments of a noisy machine, five rounds of fresh databases, and
// prints each round's ratio and their median.
//
// The server: $KEEL_BENCH_PG_URL, else $KEEL_TEST_PG_URL, else the url file
// in $KEEL_TEST_PG_DIR; without one it says so and exits 0. Each part uses
// a fresh database, dropped at the end.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "store/postgres/pg_connection.h"
#include "store/postgres/pg_node_queue.h"
#include "store/postgres/pg_schema.h"

namespace keel::bench {
namespace {

using Steady = std::chrono::steady_clock;
double Since(Steady::time_point t) { return std::chrono::duration<double>(Steady::now() - t).count(); }

std::string ServerUrl() {
  for (const char* name : {"KEEL_BENCH_PG_URL", "KEEL_TEST_PG_URL"}) {
    const char* v = std::getenv(name);
    if (v && *v) return v;
  }
  if (const char* dir = std::getenv("KEEL_TEST_PG_DIR")) {
    std::ifstream in(std::string(dir) + "/url");
    std::string url;
    if (std::getline(in, url)) return url;
  }
  return "";
}

// The URL of database `name` on the server of `url` (its path replaced).
std::string DatabaseUrl(const std::string& url, const std::string& name) {
  size_t scheme = url.find("://");
  size_t slash = url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  size_t query = url.find('?', slash == std::string::npos ? 0 : slash);
  std::string base = slash == std::string::npos ? url : url.substr(0, slash);
  return base + "/" + name + (query == std::string::npos ? "" : url.substr(query));
}

std::unique_ptr<pg::Connection> Open(const std::string& url) {
  auto conn = pg::Connection::Open(url);
  if (!conn.ok()) {
    std::fprintf(stderr, "worker_bench: %s\n", conn.status().ToString().c_str());
    std::exit(1);
  }
  return std::move(*conn);
}

void Must(const Status& s) {
  if (!s.ok()) {
    std::fprintf(stderr, "worker_bench: %s\n", s.ToString().c_str());
    std::exit(1);
  }
}

// A fresh database; dropped by the destructor.
class Database {
 public:
  Database(const std::string& server, const std::string& tag) : server_(server) {
    name_ = "bench_" + tag + "_" + std::to_string(getpid());
    auto admin = Open(server_);
    (void)admin->Exec("DROP DATABASE IF EXISTS " + name_, {}, "dropping");
    Must(admin->Exec("CREATE DATABASE " + name_, {}, "creating the database").status());
    url_ = DatabaseUrl(server_, name_);
  }
  ~Database() {
    auto admin = Open(server_);
    (void)admin->Exec("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)", {}, "dropping");
  }
  const std::string& url() const { return url_; }

 private:
  std::string server_, name_, url_;
};

WorkflowSpec Wide(int n) {
  WorkflowSpec wf;
  wf.name = "wide";
  for (int i = 0; i < n; ++i) {
    NodeSpec node;
    node.name = "n" + std::to_string(i);
    wf.nodes.push_back(node);
  }
  return wf;
}

// The bare SKIP LOCKED queue: one transaction per item, its SELECT ...
// FOR UPDATE SKIP LOCKED and its UPDATE prepared.
class BareQueue {
 public:
  BareQueue(pg::Connection& conn, int n) : conn_(conn) {
    Must(conn.ExecScript(
        "CREATE TABLE bare_queue (id bigint PRIMARY KEY, state text NOT NULL, "
        "attempt bigint NOT NULL DEFAULT 0);"
        "CREATE INDEX bare_ready ON bare_queue (id) WHERE state = 'ready'",
        "creating the bare queue"));
    Must(conn.Exec("INSERT INTO bare_queue SELECT i, 'ready' FROM generate_series(1, $1) i",
                   {std::to_string(n)}, "filling the bare queue")
             .status());
  }
  // Takes and completes `k` items.
  void Step(int k) {
    for (int i = 0; i < k; ++i) {
      Must(conn_.Transaction(
          [](pg::Connection& c) -> Status {
            auto got = c.Exec(
                "SELECT id FROM bare_queue WHERE state = 'ready' ORDER BY id LIMIT 1 "
                "FOR UPDATE SKIP LOCKED",
                {}, "claiming");
            if (!got.ok()) return got.status();
            if (got->size() == 0) return Status::Ok();
            auto done = c.Exec("UPDATE bare_queue SET state = 'done', attempt = attempt + 1 "
                               "WHERE id = $1",
                               {got->str(0, 0)}, "completing");
            return done.ok() ? Status::Ok() : done.status();
          },
          "one bare item"));
    }
  }

 private:
  pg::Connection& conn_;
};

// A run of `n` independent nodes, claimed and committed as a worker's slot
// does: the first claim alone, then each commit claims the next node in its
// round trip (NodeCommit::claim_next), the workflow's index made once as a
// worker makes it per script.
class KeelQueue {
 public:
  KeelQueue(pg::Connection& conn, int n) : conn_(conn), wf_(Wide(n)), index_(wf_) {
    Must(pg::Migrate(conn));
    RunRecord run;
    run.id = "bench";
    run.workflow = wf_.name;
    run.script_path = "/bench.lua";
    run.script_sha256 = "0";
    run.node_count = n;
    Must(pg::SubmitRun(conn, run, wf_, 1));
    Must(pg::RegisterWorker(conn, "bench", Owner{1, "bench", 0}, 60));
  }
  // Commits `k` nodes (claiming the first when none is held).
  void Step(int k) {
    if (!started_) {
      auto claims = pg::ClaimReady(conn_, "bench", 1);
      if (!claims.ok()) Must(claims.status());
      claims_ = std::move(*claims);
      started_ = true;
    }
    for (int i = 0; i < k && !claims_.empty(); ++i) {
      pg::NodeCommit commit;
      commit.claim = claims_[0];
      commit.worker = "bench";
      commit.claim_next = 1;
      commit.index = &index_;
      NodeRecord rec;
      rec.run_id = commit.claim.run_id;
      rec.node = commit.claim.node;
      rec.status = NodeStatus::kSucceeded;
      rec.attempts = 1;
      rec.output_json = "null";
      commit.records.push_back(rec);
      commit.events.push_back({rec.run_id, 0, 2, rec.node, "node_succeeded", "{}"});
      auto done = pg::CommitNode(conn_, &wf_, commit, 2);
      if (!done.ok()) Must(done.status());
      claims_ = std::move(done->claimed);
      ++committed_;
    }
  }
  int committed() const { return committed_; }

 private:
  pg::Connection& conn_;
  WorkflowSpec wf_;
  WorkflowIndex index_;
  bool started_ = false;
  std::vector<pg::NodeClaim> claims_;
  int committed_ = 0;
};

// Per item, the bare loop's time and keel's, for `n` items each: run in
// turns of 100, so both meet the same moments of a noisy machine.
std::pair<double, double> Overhead(const std::string& server, int n) {
  Database bare_db(server, "bare");
  Database keel_db(server, "keel");
  auto bare_conn = Open(bare_db.url());
  auto keel_conn = Open(keel_db.url());
  BareQueue bare(*bare_conn, n);
  KeelQueue keel(*keel_conn, n);
  double bare_s = 0, keel_s = 0;
  for (int done = 0; done < n; done += 100) {
    int k = std::min(100, n - done);
    auto start = Steady::now();
    bare.Step(k);
    bare_s += Since(start);
    start = Steady::now();
    keel.Step(k);
    keel_s += Since(start);
  }
  if (keel.committed() != n) {
    std::fprintf(stderr, "worker_bench: %d of %d nodes committed\n", keel.committed(), n);
    std::exit(1);
  }
  return {bare_s / n, keel_s / n};
}

// Busy and total CPU time of this machine so far (/proc/stat, in ticks).
std::pair<double, double> CpuTicks() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  double user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0;
  in >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq;
  double busy = user + nice + system + irq + softirq;
  return {busy, busy + idle + iowait};
}

struct Span {
  double seconds = 0;
  double cpu_busy = 0;  // share of the machine's CPU time in use meanwhile
};

// Runs `n` nodes of a `sleep_s` sleep with `workers` keel worker processes.
Span Throughput(const std::string& server, int n, int workers, double sleep_s) {
  Database db(server, "tp" + std::to_string(workers));
  char dir_template[] = "/tmp/keel-worker-bench-XXXXXX";
  std::string dir = mkdtemp(dir_template);
  std::string file = dir + "/sleep.lua";
  {
    std::ofstream out(file);
    out << "local keel = require \"keel\"\nlocal spec = {}\nfor i = 1, " << n
        << " do\n  spec[#spec + 1] = keel.fn(\"n\" .. i) { run = function() keel.sleep(" << sleep_s
        << ") return i end }\nend\nreturn keel.workflow \"sleeps\" (spec)\n";
  }
  std::string cmd = std::string(KEEL_BIN) + " submit " + file + " --db '" + db.url() + "'";
  FILE* p = popen(cmd.c_str(), "r");
  char id[128] = {0};
  if (!p || !fgets(id, sizeof id, p)) {
    std::fprintf(stderr, "worker_bench: keel submit failed\n");
    std::exit(1);
  }
  pclose(p);
  std::string run_id(id);
  while (!run_id.empty() && run_id.back() == '\n') run_id.pop_back();

  auto cpu_before = CpuTicks();
  std::vector<pid_t> pids;
  for (int i = 0; i < workers; ++i) {
    pid_t pid = fork();
    if (pid == 0) {
      freopen("/dev/null", "w", stderr);
      execl(KEEL_BIN, KEEL_BIN, "worker", "--db", db.url().c_str(), "--concurrency", "16",
            static_cast<char*>(nullptr));
      _exit(127);
    }
    pids.push_back(pid);
  }
  auto conn = Open(db.url());
  for (;;) {
    auto status = conn->Exec("SELECT status FROM runs WHERE id = $1", {run_id}, "polling");
    if (status.ok() && status->size() == 1 && status->text(0, 0) != "running") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  auto cpu_after = CpuTicks();
  for (pid_t pid : pids) kill(pid, SIGTERM);
  for (pid_t pid : pids) waitpid(pid, nullptr, 0);
  // From the first claim to the last commit, on the database's clock.
  auto span = conn->Exec(
      "SELECT extract(epoch FROM max(at) - min(at)) FROM claim_log WHERE run_id = $1", {run_id},
      "measuring");
  std::string rm = "rm -rf " + dir;
  (void)!system(rm.c_str());
  Span out;
  out.seconds = span.ok() ? span->real(0, 0) : 0;
  double total = cpu_after.second - cpu_before.second;
  out.cpu_busy = total > 0 ? (cpu_after.first - cpu_before.first) / total : 0;
  return out;
}

void Series(const std::string& server, int nodes, double sleep_s) {
  std::printf("throughput, %d nodes of %.0f ms sleep, 16 slots per worker:\n", nodes,
              sleep_s * 1e3);
  double one = 0;
  for (int workers : {1, 2, 4}) {
    Span s = Throughput(server, nodes, workers, sleep_s);
    if (workers == 1) one = s.seconds;
    std::printf("  %d worker(s)  %7.2f s  %7.0f nodes/s  speed-up %.2fx  cpu %3.0f%%\n", workers,
                s.seconds, s.seconds > 0 ? nodes / s.seconds : 0,
                s.seconds > 0 ? one / s.seconds : 0, s.cpu_busy * 100);
  }
}

}  // namespace
}  // namespace keel::bench

int main(int argc, char** argv) {
  using namespace keel::bench;
  bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  bool overhead = argc > 1 && std::strcmp(argv[1], "--overhead") == 0;
  std::string server = ServerUrl();
  if (server.empty()) {
    std::printf("worker_bench: no PostgreSQL server (set KEEL_BENCH_PG_URL); skipped\n");
    return 0;
  }
  int n = quick ? 200 : 2000;
  std::printf("claim + commit, %d independent nodes, one connection:\n", n);
  std::vector<double> ratios;
  for (int round = 0; round < (quick ? 1 : 5); ++round) {
    auto [bare, keel_s] = Overhead(server, n);
    std::printf("  bare SKIP LOCKED loop   %8.3f ms/item\n", bare * 1e3);
    std::printf("  keel claim + commit     %8.3f ms/node   ratio %.2fx\n", keel_s * 1e3,
                keel_s / bare);
    ratios.push_back(keel_s / bare);
  }
  std::sort(ratios.begin(), ratios.end());
  std::printf("  median ratio %.2fx\n", ratios[ratios.size() / 2]);
  if (overhead) return 0;

  Series(server, quick ? 200 : 10000, 0.01);
  Series(server, quick ? 200 : 2000, 0.1);
  return 0;
}
