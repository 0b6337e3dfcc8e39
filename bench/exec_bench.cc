// exec_bench: what running a program as an exec node costs beyond running
// it. 100 `true` processes in parallel three ways, each measured in the
// same run, best of several rounds:
//
//   bare      posix_spawn all 100, then waitpid each (the floor), on one
//             thread and on two (as keel's two workers spawn); ratios are
//             to the two-thread figure
//   loop      ProcessLoop alone, started from one thread: spawn, watch
//             pipes and pidfd, reap
//   keel      a workflow of 100 keel.exec nodes on 2 workers (Lua, the
//             executor, the policy stack; no store)
//
// Prints seconds per round, the overhead per process over `bare` and the
// ratios.
//
//   exec_bench            N = 100, 10 rounds
//   exec_bench --quick    N = 20, 3 rounds (a smoke test for ctest)

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/clock.h"
#include "engine/executor.h"
#include "nodes/child_process.h"
#include "scripts/workflow_loader.h"

extern char** environ;

namespace keel::bench {
namespace {

namespace fs = std::filesystem;
using Steady = std::chrono::steady_clock;

double Seconds(Steady::time_point since) {
  return std::chrono::duration<double>(Steady::now() - since).count();
}

std::string TruePath() {
  return access("/usr/bin/true", X_OK) == 0 ? "/usr/bin/true" : "/bin/true";
}

// Spawns `n` `true`s, then waits for each.
void SpawnAndWait(int n) {
  static const std::string path = TruePath();
  char* argv[] = {const_cast<char*>("true"), nullptr};
  std::vector<pid_t> pids;
  for (int i = 0; i < n; ++i) {
    pid_t pid;
    if (posix_spawn(&pid, path.c_str(), nullptr, nullptr, argv, environ) != 0) std::exit(1);
    pids.push_back(pid);
  }
  for (pid_t pid : pids) {
    int status;
    waitpid(pid, &status, 0);
  }
}

// The same on `threads` threads, n / threads each, as keel's workers spawn.
double Bare(int n, int threads) {
  auto start = Steady::now();
  std::vector<std::thread> spawners;
  for (int t = 0; t < threads; ++t) {
    int share = n / threads + (t < n % threads ? 1 : 0);
    spawners.emplace_back([share] { SpawnAndWait(share); });
  }
  for (std::thread& thread : spawners) thread.join();
  return Seconds(start);
}

double Loop(ProcessLoop& loop, int n) {
  std::mutex mu;
  std::condition_variable cv;
  int left = n;
  auto start = Steady::now();
  for (int i = 0; i < n; ++i) {
    ProcessRequest request;
    request.argv = {"true"};
    loop.Start(std::move(request), [&](ProcessResult r) {
      if (!r.status.ok() || r.exit_code != 0) std::exit(1);
      std::lock_guard<std::mutex> lock(mu);
      if (--left == 0) cv.notify_one();
    });
  }
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return left == 0; });
  return Seconds(start);
}

std::shared_ptr<LoadedScript> LoadExecWorkflow(const fs::path& dir, int n) {
  fs::path file = dir / "exec.lua";
  std::ofstream out(file);
  out << "local keel = require \"keel\"\nreturn keel.workflow \"exec\" {\n";
  for (int i = 0; i < n; ++i) out << "  keel.exec \"t" << i << "\" { command = { \"true\" } },\n";
  out << "}\n";
  out.close();
  auto loaded = LoadWorkflowFile(file.string(), LoadOptions{});
  if (!loaded.ok()) {
    std::fprintf(stderr, "load failed: %s\n", loaded.status().message().c_str());
    std::exit(1);
  }
  return *loaded;
}

double Keel(const LoadedScript& script) {
  auto start = Steady::now();
  Executor executor(script.clock, nullptr, nullptr);
  ExecutorOptions options;
  options.workers = 2;
  const WorkflowSpec& wf = script.main_workflow();
  RunOutcome out = executor.Run(wf, "bench", wf.params, {}, options);
  if (out.status != RunStatus::kSucceeded) {
    std::fprintf(stderr, "run failed: %s\n", out.error.c_str());
    std::exit(1);
  }
  return Seconds(start);
}

int Main(bool quick) {
  const int n = quick ? 20 : 100;
  const int rounds = quick ? 3 : 10;
  fs::path dir = fs::temp_directory_path() / ("keel-exec-bench-" + std::to_string(getpid()));
  fs::create_directories(dir);
  auto script = LoadExecWorkflow(dir, n);
  ProcessLoop loop(SystemClock());

  // Rounds interleave the three, so that noise from the rest of the
  // machine falls on all of them alike; the first round warms up (TBB
  // threads, Lua states, the loop's thread) and does not count.
  double bare1 = 1e9, bare = 1e9, alone = 1e9, keel = 1e9;
  for (int i = 0; i <= rounds; ++i) {
    double b1 = Bare(n, 1), b = Bare(n, 2), l = Loop(loop, n), k = Keel(*script);
    if (i == 0) continue;
    bare1 = std::min(bare1, b1);
    bare = std::min(bare, b);
    alone = std::min(alone, l);
    keel = std::min(keel, k);
  }
  fs::remove_all(dir);

  std::printf("exec_bench: %d `true` processes in parallel, best of %d rounds, 2 workers\n", n,
              rounds);
  std::printf("  %-44s %8.2f ms  (%6.1f us/process)  x%.2f\n",
              "bare posix_spawn + waitpid, 1 thread", bare1 * 1e3, bare1 / n * 1e6, bare1 / bare);
  std::printf("  %-44s %8.2f ms  (%6.1f us/process)  x1.00\n",
              "bare posix_spawn + waitpid, 2 threads", bare * 1e3, bare / n * 1e6);
  std::printf("  %-44s %8.2f ms  (%6.1f us/process)  x%.2f\n", "ProcessLoop (spawn, pipes, pidfd)",
              alone * 1e3, alone / n * 1e6, alone / bare);
  std::printf("  %-44s %8.2f ms  (%6.1f us/process)  x%.2f\n",
              "keel.exec nodes through the executor", keel * 1e3, keel / n * 1e6, keel / bare);
  // Each against the bare figure with as many spawning threads.
  std::printf(
      "  overhead per process: ProcessLoop %+.1f us (vs 1 thread, x%.2f), "
      "exec node %+.1f us (vs 2 threads, x%.2f)\n",
      (alone - bare1) / n * 1e6, alone / bare1, (keel - bare) / n * 1e6, keel / bare);
  return 0;
}

}  // namespace
}  // namespace keel::bench

int main(int argc, char** argv) {
  bool quick = argc == 2 && std::strcmp(argv[1], "--quick") == 0;
  return keel::bench::Main(quick);
}
