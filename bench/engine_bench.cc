// Engine overhead per node: keel (store off / on) against a bare
// tbb::flow::graph + Lua + batched SQLite baseline, in the same process.
// Also: peak RSS of a 100k-node run, and `keel run` start-up time.
//
//   engine_bench              full matrix (N = 1k, 10k, 100k)
//   engine_bench --quick      N = 1k only (a smoke test for ctest)
//   engine_bench --rss N      internal: runs one layered N-node workflow, prints peak RSS

#include <fcntl.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/baseline.h"
#include "bench/dag_shapes.h"
#include "engine/clock.h"
#include "engine/executor.h"
#include "engine/runner.h"
#include "store/sqlite/sqlite_store.h"
#include "scripts/workflow_loader.h"

extern char** environ;

namespace keel::bench {
namespace {

namespace fs = std::filesystem;

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

fs::path TempDir() {
  fs::path dir = fs::temp_directory_path() / ("keel-bench-" + std::to_string(getpid()));
  fs::create_directories(dir);
  return dir;
}

std::shared_ptr<LoadedScript> Load(const fs::path& dir, Shape shape, int n) {
  fs::path file = dir / (std::string(ShapeName(shape)) + std::to_string(n) + ".lua");
  std::ofstream(file) << MakeScript(shape, n);
  auto loaded = LoadWorkflowFile(file.string(), LoadOptions{});
  if (!loaded.ok()) {
    std::fprintf(stderr, "load failed: %s\n", loaded.status().message().c_str());
    std::exit(1);
  }
  return *loaded;
}

std::unique_ptr<SqliteStore> OpenStore(const fs::path& path) {
  SqliteStoreOptions opts;
  opts.create_if_missing = true;
  auto store = SqliteStore::Open(path.string(), opts);
  if (!store.ok()) {
    std::fprintf(stderr, "store: %s\n", store.status().message().c_str());
    std::exit(1);
  }
  return std::move(store.value());
}

// Seconds for one keel run, store off (`store` null) or on.
double KeelRun(const LoadedScript& script, Store* store) {
  auto start = std::chrono::steady_clock::now();
  const WorkflowSpec& wf = script.main_workflow();
  if (store) {
    Runner runner(SystemClock(), store, nullptr);
    auto report = runner.Start(wf, script.info, wf.params, ExecutorOptions{});
    if (!report.ok() || report->status != RunStatus::kSucceeded) std::exit(1);
  } else {
    Executor executor(SystemClock(), nullptr, nullptr);
    auto out = executor.Run(wf, "bench", wf.params, {}, ExecutorOptions{});
    if (out.status != RunStatus::kSucceeded) std::exit(1);
  }
  return Seconds(start);
}

template <typename F>
double Best(int reps, F&& f) {
  f();  // warm-up: Lua states, TBB threads, SQLite pages
  double best = 1e9;
  for (int i = 0; i < reps; ++i) best = std::min(best, f());
  return best;
}

long PeakRssKb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

int RssMode(int n) {
  fs::path dir = TempDir();
  auto script = Load(dir, Shape::kLayered, n);
  auto store = OpenStore(dir / "rss.db");
  long before = PeakRssKb();
  double secs = KeelRun(*script, store.get());
  std::printf("%ld %ld %.3f\n", before, PeakRssKb(), secs);
  store.reset();
  fs::remove_all(dir);
  return 0;
}

// Runs `argv` and returns its stdout (first line), or "" on failure.
std::string Capture(const std::vector<std::string>& args) {
  int fds[2];
  if (pipe(fds) != 0) return "";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addclose(&actions, fds[0]);
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid;
  int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  std::string out;
  char buf[4096];
  ssize_t got;
  while (rc == 0 && (got = read(fds[0], buf, sizeof buf)) > 0) out.append(buf, got);
  close(fds[0]);
  int status = 0;
  if (rc == 0) waitpid(pid, &status, 0);
  return (rc == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0) ? out : "";
}

void StartupBench(const fs::path& dir) {
  fs::path flow = dir / "three.lua";
  std::ofstream(flow) << "local keel = require 'keel'\n"
                         "return keel.workflow 'three' {\n"
                         "  keel.fn 'a' { run = function(ctx) return 1 end },\n"
                         "  keel.fn 'b' { after = {'a'}, run = function(ctx) return ctx.deps.a + 1 end },\n"
                         "  keel.fn 'c' { after = {'b'}, run = function(ctx) return ctx.deps.b + 1 end },\n"
                         "}\n";
  std::string db = (dir / "startup.db").string();
  std::vector<double> keel_ms, true_ms;
  for (int i = 0; i < 11; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    std::string out = Capture({KEEL_BIN, "run", flow.string(), "--db", db});
    keel_ms.push_back(Seconds(t0) * 1000);
    if (out.empty()) {
      std::printf("startup: keel run failed\n");
      return;
    }
    t0 = std::chrono::steady_clock::now();
    Capture({"/bin/true"});
    true_ms.push_back(Seconds(t0) * 1000);
  }
  std::sort(keel_ms.begin(), keel_ms.end());
  std::sort(true_ms.begin(), true_ms.end());
  std::printf("\nstartup: `keel run` of a 3-node workflow (new run each time, store on)\n");
  std::printf("  median %.1f ms, best %.1f ms  (spawning /bin/true: %.1f ms; target < 50 ms)\n",
              keel_ms[keel_ms.size() / 2], keel_ms[0], true_ms[true_ms.size() / 2]);
}

int Matrix(bool quick) {
  fs::path dir = TempDir();
  std::vector<int> sizes = quick ? std::vector<int>{1000} : std::vector<int>{1000, 10000, 100000};
  std::printf("keel engine overhead: no-op Lua nodes, %u cores\n",
              std::thread::hardware_concurrency());
  std::printf("%-8s %7s | %9s %9s %6s | %9s %9s %6s %9s\n", "shape", "N", "keel", "base",
              "ratio", "keel+db", "base+db", "ratio", "ns/node+");
  for (int n : sizes) {
    for (Shape shape : {Shape::kChain, Shape::kFan, Shape::kLayered}) {
      auto script = Load(dir, shape, n);
      auto deps = MakeDag(shape, n);
      int reps = n >= 100000 ? 1 : 3;
      double keel_off = Best(reps, [&] { return KeelRun(*script, nullptr); });
      Baseline base_off("");
      double base = Best(reps, [&] { return base_off.Run(deps); });
      fs::path keel_db = dir / ("keel" + std::to_string(n) + ShapeName(shape) + ".db");
      auto store = OpenStore(keel_db);
      double keel_on = Best(reps, [&] { return KeelRun(*script, store.get()); });
      store.reset();
      Baseline base_db((dir / ("base" + std::to_string(n) + ShapeName(shape) + ".db")).string());
      double base_on = Best(reps, [&] { return base_db.Run(deps); });
      std::printf("%-8s %7d | %8.1fms %8.1fms %5.2fx | %8.1fms %8.1fms %5.2fx %9.0f\n",
                  ShapeName(shape), n, keel_off * 1e3, base * 1e3, keel_off / base, keel_on * 1e3,
                  base_on * 1e3, keel_on / base_on, (keel_on - base_on) / n * 1e9);
      std::fflush(stdout);
    }
  }
  if (!quick) {
    std::string rss = Capture({"/proc/self/exe", "--rss", "100000"});
    long before = 0, peak = 0;
    double secs = 0;
    if (std::sscanf(rss.c_str(), "%ld %ld %lf", &before, &peak, &secs) == 3) {
      std::printf("\n100k-node layered run, store on: peak RSS %.1f MiB (%.1f MiB after loading "
                  "the script), %.2f s\n",
                  peak / 1024.0, before / 1024.0, secs);
    }
  }
  StartupBench(dir);
  fs::remove_all(dir);
  return 0;
}

}  // namespace
}  // namespace keel::bench

int main(int argc, char** argv) {
  if (argc == 3 && std::strcmp(argv[1], "--rss") == 0) return keel::bench::RssMode(std::atoi(argv[2]));
  bool quick = argc == 2 && std::strcmp(argv[1], "--quick") == 0;
  return keel::bench::Matrix(quick);
}
