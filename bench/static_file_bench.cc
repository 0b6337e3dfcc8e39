// A large static workflow file end to end: `keel run` (process start to
// exit, checkpoints on) of a file declaring N `keel.fn` nodes with no-op
// bodies and no dependencies, against the raw limit measured in the same
// run: the same N Lua calls on a bare oneTBB fan-out with batched SQLite
// inserts (bench/baseline.h). Prints the ratio and keel's peak RSS.
//
//   static_file_bench              N = 100,000, best of 3
//   static_file_bench --nodes N    another N
//   static_file_bench --quick      N = 5,000, once (a smoke test for ctest)
//   static_file_bench --keel PATH  measure another keel binary

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/baseline.h"
#include "bench/child_process.h"

namespace keel::bench {
namespace {

namespace fs = std::filesystem;

// Every node written out, as a generated file would be.
void WriteStaticFile(const fs::path& path, int n) {
  std::ofstream out(path);
  out << "local keel = require 'keel'\nreturn keel.workflow 'static' {\n";
  for (int i = 0; i < n; ++i) out << "  keel.fn 'n" << i << "' { run = function(ctx) end },\n";
  out << "}\n";
}

int Main(const char* keel, int n, int reps) {
  fs::path dir = fs::temp_directory_path() / ("keel-static-" + std::to_string(getpid()));
  fs::create_directories(dir);
  fs::path flow = dir / "static.lua";
  WriteStaticFile(flow, n);
  std::printf("static file of %d no-op keel.fn nodes, `keel run` end to end, store on, %u cores\n",
              n, std::thread::hardware_concurrency());
  double keel_best = 1e9, keel_cpu = 1e9;
  long rss_kb = 0;
  for (int i = 0; i < reps; ++i) {
    std::string db = (dir / ("keel" + std::to_string(i) + ".db")).string();
    ChildRun run = RunChild({keel, "run", flow.string(), "--db", db});
    if (!run.ok) {
      std::fprintf(stderr, "static_file_bench: keel run failed\n");
      fs::remove_all(dir);
      return 1;
    }
    keel_best = std::min(keel_best, run.seconds);
    keel_cpu = std::min(keel_cpu, run.cpu_seconds);
    rss_kb = std::max(rss_kb, run.peak_rss_kb);
  }
  std::vector<std::vector<int>> deps(n);  // a fan-out: every node is a root
  Baseline baseline((dir / "base.db").string());
  baseline.Run(deps);  // warm-up: the per-thread Lua states, TBB's threads
  double base_best = 1e9, base_cpu = 1e9;
  for (int i = 0; i < reps; ++i) {
    double cpu_before = SelfCpuSeconds();
    base_best = std::min(base_best, baseline.Run(deps));
    base_cpu = std::min(base_cpu, SelfCpuSeconds() - cpu_before);
  }
  // CPU time too: on a busy machine wall time mostly measures the others.
  std::printf("  keel run   %8.3f s wall (%6.2f us/node)  %8.3f s CPU  peak RSS %.1f MiB\n",
              keel_best, keel_best / n * 1e6, keel_cpu, rss_kb / 1024.0);
  std::printf("  baseline   %8.3f s wall (%6.2f us/node)  %8.3f s CPU\n", base_best,
              base_best / n * 1e6, base_cpu);
  std::printf("  ratio      %8.2fx wall (target < 4x)       %8.2fx CPU\n", keel_best / base_best,
              keel_cpu / base_cpu);
  fs::remove_all(dir);
  return 0;
}

}  // namespace
}  // namespace keel::bench

int main(int argc, char** argv) {
  int n = 100000, reps = 3;
  const char* keel = KEEL_BIN;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) {
      n = 5000;
      reps = 1;
    } else if (std::strcmp(argv[i], "--keel") == 0 && i + 1 < argc) {
      keel = argv[++i];
    } else if (std::strcmp(argv[i], "--nodes") == 0 && i + 1 < argc) {
      n = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: static_file_bench [--quick] [--nodes N] [--keel PATH]\n");
      return 2;
    }
  }
  if (n < 1) return 2;
  return keel::bench::Main(keel, n, reps);
}
