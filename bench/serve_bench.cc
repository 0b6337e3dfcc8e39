// serve_bench: `keel serve` under load. Builds a database of 10,000 runs
// and 1,000,000 events straight with SQLite (seconds), starts `keel serve`
// on it, and measures GET /api/v1/runs?limit=50 (and any URL paths given on
// the command line, e.g. /metrics) with wrk at 100 connections: median and
// p99 latency, requests/s, the server's RSS; then the same listing read
// directly through the SQLite store in this process, as the baseline of the
// ratio that shows what the service adds.
//
//   serve_bench [--quick] [PATH...]
//
// --quick: 1,000 runs, 100,000 events, 3 s per URL. Needs wrk (Debian's
// `wrk`; `make bench` installs it); without it, says so and measures the
// latency with one sequential client only.

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "store/sqlite/sqlite_store.h"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

void Exec(sqlite3* db, const std::string& sql) {
  char* error = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
    std::fprintf(stderr, "serve_bench: %s\n  in: %.200s\n", error, sql.c_str());
    std::exit(1);
  }
}

// Runs argv with stdout to a pipe; returns what it printed ("" on failure).
std::string Capture(const std::vector<std::string>& argv, int* exit_code) {
  int out[2];
  if (pipe(out) != 0) return "";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_addclose(&actions, out[0]);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(out[1]);
  std::string text;
  if (rc == 0) {
    char buffer[4096];
    ssize_t n;
    while ((n = read(out[0], buffer, sizeof buffer)) > 0) text.append(buffer, n);
  }
  close(out[0]);
  int status = 0;
  if (rc == 0) waitpid(pid, &status, 0);
  *exit_code = rc == 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return text;
}

bool HaveWrk() {
  int code = 0;
  Capture({"sh", "-c", "command -v wrk"}, &code);
  return code == 0;
}

// Builds the database: `keel run` of a one-node workflow makes the schema
// and a template run, copied `runs` times; `events_per_run` events each,
// one in 20 an LLM call with usage (what the listing sums).
void BuildDatabase(const std::string& dir, const std::string& db_path, int runs,
                   int events_per_run) {
  std::string script = dir + "/one.lua";
  std::ofstream(script) << "local keel = require 'keel'\n"
                           "return keel.workflow 'bench' { keel.fn 'a' { run = function() "
                           "return 1 end } }\n";
  int code = 0;
  Capture({KEEL_BIN, "run", script, "--db", db_path}, &code);
  if (code != 0) {
    std::fprintf(stderr, "serve_bench: keel run failed\n");
    std::exit(1);
  }
  sqlite3* db = nullptr;
  sqlite3_open(db_path.c_str(), &db);
  sqlite3_stmt* stmt = nullptr;
  sqlite3_prepare_v2(db, "SELECT name FROM pragma_table_info('runs')", -1, &stmt, nullptr);
  std::string columns, values;
  while (sqlite3_step(stmt) == SQLITE_ROW) {
    std::string name = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    columns += (columns.empty() ? "" : ", ") + name;
    std::string value = name;
    if (name == "id") value = "printf('bench-%06d', s.n)";
    if (name == "created_at" || name == "updated_at" || name == "heartbeat") {
      value = "1.7e9 + s.n";
    }
    if (name == "finished_at") value = "1.7e9 + s.n + 1";
    values += (values.empty() ? "" : ", ") + value;
  }
  sqlite3_finalize(stmt);
  auto start = Clock::now();
  Exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF; BEGIN");
  Exec(db, "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < " +
               std::to_string(runs) + ") INSERT INTO runs (" + columns + ") SELECT " + values +
               " FROM s, (SELECT * FROM runs LIMIT 1)");
  Exec(db,
       "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < " +
           std::to_string(runs) + "), e(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM e WHERE k < " +
           std::to_string(events_per_run) +
           ") INSERT INTO events (run_id, seq, ts, node, kind, data_json) SELECT "
           "printf('bench-%06d', r.n), e.k, 1.7e9 + r.n + e.k * 0.001, 'a', "
           "CASE WHEN e.k % 20 = 0 THEN 'llm_call' ELSE 'node_succeeded' END, "
           "CASE WHEN e.k % 20 = 0 THEN '{\"provider\":\"p\",\"model\":\"m\",\"prompt_tokens\":"
           "100,\"completion_tokens\":20,\"cost\":0.001}' ELSE '{\"attempt\":1}' END "
           "FROM r, e");
  Exec(db, "COMMIT");
  sqlite3_close(db);
  std::printf("database: %d runs, %lld events, built in %.1f s\n", runs + 1,
              static_cast<long long>(runs) * events_per_run, Since(start));
}

struct Server {
  pid_t pid = -1;
  int port = 0;
};

Server StartServer(const std::string& dir, const std::string& db_path) {
  std::string log = dir + "/serve.err";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 2, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  std::vector<std::string> argv = {KEEL_BIN, "serve", "--listen", "127.0.0.1:0", "--db", db_path};
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  Server server;
  posix_spawn(&server.pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  const std::string marker = "listening on http://127.0.0.1:";
  for (int i = 0; i < 200 && server.port == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    std::stringstream text;
    text << std::ifstream(log).rdbuf();
    size_t at = text.str().find(marker);
    if (at != std::string::npos) server.port = std::atoi(text.str().c_str() + at + marker.size());
  }
  if (server.port == 0) {
    std::fprintf(stderr, "serve_bench: keel serve did not start (see %s)\n", log.c_str());
    std::exit(1);
  }
  return server;
}

long RssKb(pid_t pid, const char* field) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind(field, 0) == 0) return std::atol(line.c_str() + std::strlen(field));
  }
  return -1;
}

// wrk's "50%" / "99%" latency lines and Requests/sec, in ms and 1/s.
double WrkMs(const std::string& out, const std::string& label) {
  size_t at = out.find(label);
  if (at == std::string::npos) return -1;
  std::istringstream in(out.substr(at + label.size()));
  double value = 0;
  std::string unit;
  in >> value;
  char c;
  while (in.get(c) && std::isalpha(static_cast<unsigned char>(c))) unit += c;
  if (unit == "us") return value / 1000;
  if (unit == "s") return value * 1000;
  return value;
}

// Median seconds of the 50-run listing read through the store directly.
double DirectListingMs(const std::string& db_path, int rounds) {
  keel::SqliteStoreOptions options;
  options.create_if_missing = false;
  auto store = keel::SqliteStore::Open(db_path, options);
  if (!store.ok()) return -1;
  keel::RunFilter filter;
  filter.limit = 50;
  std::vector<double> ms;
  for (int i = 0; i < rounds; ++i) {
    auto start = Clock::now();
    auto rows = (*store)->ListRuns(filter);
    ms.push_back(Since(start) * 1000);
    if (!rows.ok() || rows->size() != 50) return -1;
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  std::vector<std::string> paths = {"/api/v1/runs?limit=50"};
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--quick") {
      quick = true;
    } else {
      paths.push_back(arg);
    }
  }
  const int runs = quick ? 1000 : 10000;
  const int events_per_run = 100;
  const std::string seconds = quick ? "3s" : "10s";

  std::string dir = std::filesystem::temp_directory_path() /
                    ("keel-serve-bench-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::string db_path = dir + "/bench.db";
  BuildDatabase(dir, db_path, runs, events_per_run);
  Server server = StartServer(dir, db_path);
  std::printf("keel serve pid %d on port %d; RSS at start %ld kB\n", server.pid, server.port,
              RssKb(server.pid, "VmRSS:"));

  bool wrk = HaveWrk();
  if (!wrk) std::printf("wrk is not installed (apt-get install wrk): one sequential client only\n");
  double api_median = -1;
  for (const std::string& path : paths) {
    std::string url = "http://127.0.0.1:" + std::to_string(server.port) + path;
    if (wrk) {
      int code = 0;
      std::string out =
          Capture({"wrk", "-t4", "-c100", "-d" + seconds, "--latency", url}, &code);
      double p50 = WrkMs(out, " 50%");
      double p99 = WrkMs(out, " 99%");
      double rps = WrkMs(out, "Requests/sec:");
      std::printf("GET %s: median %.2f ms, p99 %.2f ms, %.0f requests/s (wrk, 100 connections, %s)\n",
                  path.c_str(), p50, p99, rps, seconds.c_str());
      if (out.find("Non-2xx") != std::string::npos) std::printf("  wrk saw non-2xx answers\n");
      if (path == paths[0]) api_median = p50;
    } else {
      std::vector<double> ms;
      for (int i = 0; i < 200; ++i) {
        auto start = Clock::now();
        int code = 0;
        Capture({"curl", "-s", "-o", "/dev/null", url}, &code);
        ms.push_back(Since(start) * 1000);
      }
      std::sort(ms.begin(), ms.end());
      std::printf("GET %s: median %.2f ms (curl, sequential, process start included)\n",
                  path.c_str(), ms[ms.size() / 2]);
      if (path == paths[0]) api_median = ms[ms.size() / 2];
    }
  }
  std::printf("server RSS %ld kB now, peak %ld kB\n", RssKb(server.pid, "VmRSS:"),
              RssKb(server.pid, "VmHWM:"));
  double direct = DirectListingMs(db_path, quick ? 50 : 200);
  std::printf("the same listing through the SQLite store in-process: median %.2f ms; "
              "API median / direct = %.1fx\n",
              direct, direct > 0 ? api_median / direct : 0.0);

  kill(server.pid, SIGTERM);
  int status = 0;
  waitpid(server.pid, &status, 0);
  std::filesystem::remove_all(dir);
  return 0;
}
