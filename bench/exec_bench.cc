// exec_bench: what running a program as an exec node costs beyond running
// it. 100 `true` processes in parallel three ways, each measured in the
// same run, best of several rounds:
//
//   bare      posix_spawn all 100, then waitpid each (the floor)
//   loop      ProcessLoop alone: spawn, watch pipes and pidfd, reap
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

std::string TruePath() { return access("/usr/bin/true", X_OK) == 0 ? "/usr/bin/true" : "/bin/true"; }

double Bare(int n) {
  std::string path = TruePath();
  char* argv[] = {const_cast<char*>("true"), nullptr};
  auto start = Steady::now();
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

template <typename F>
double Best(int rounds, F&& f) {
  f();  // warm-up: TBB threads, Lua states, the loop's thread
  double best = 1e9;
  for (int i = 0; i < rounds; ++i) best = std::min(best, f());
  return best;
}

int Main(bool quick) {
  const int n = quick ? 20 : 100;
  const int rounds = quick ? 3 : 10;
  fs::path dir = fs::temp_directory_path() / ("keel-exec-bench-" + std::to_string(getpid()));
  fs::create_directories(dir);
  auto script = LoadExecWorkflow(dir, n);
  ProcessLoop loop(SystemClock());

  double bare = Best(rounds, [&] { return Bare(n); });
  double alone = Best(rounds, [&] { return Loop(loop, n); });
  double keel = Best(rounds, [&] { return Keel(*script); });
  fs::remove_all(dir);

  std::printf("exec_bench: %d `true` processes in parallel, best of %d rounds, 2 workers\n", n,
              rounds);
  std::printf("  %-44s %8.2f ms  (%6.1f us/process)\n", "bare posix_spawn + waitpid", bare * 1e3,
              bare / n * 1e6);
  std::printf("  %-44s %8.2f ms  (%6.1f us/process)  x%.2f\n", "ProcessLoop (spawn, pipes, pidfd)",
              alone * 1e3, alone / n * 1e6, alone / bare);
  std::printf("  %-44s %8.2f ms  (%6.1f us/process)  x%.2f\n", "keel.exec nodes through the executor",
              keel * 1e3, keel / n * 1e6, keel / bare);
  std::printf("  overhead per process over bare: loop %+.1f us, exec node %+.1f us\n",
              (alone - bare) / n * 1e6, (keel - bare) / n * 1e6);
  return 0;
}

}  // namespace
}  // namespace keel::bench

int main(int argc, char** argv) {
  bool quick = argc == 2 && std::strcmp(argv[1], "--quick") == 0;
  return keel::bench::Main(quick);
}
