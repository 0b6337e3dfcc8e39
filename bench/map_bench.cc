// keel.map end to end: a map of N no-op Lua items run by the `keel` binary
// (process start to exit, checkpoints on), against the raw limit measured in
// the same run: the same N Lua calls on a bare oneTBB fan-out with the same
// rows inserted in batched SQLite transactions (bench/baseline.h). Prints
// the ratio and the keel process's peak RSS.
//
//   map_bench            N = 100000 (targets: within 2.5x, RSS under 150 MB)
//   map_bench --quick    N = 10000 (a smoke test for ctest)

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "bench/baseline.h"
#include "bench/child_process.h"
#include "bench/dag_shapes.h"

namespace keel::bench {
namespace {

namespace fs = std::filesystem;

std::string MapScript() {
  return "local keel = require 'keel'\n"
         "return keel.workflow 'map_bench' {\n"
         "  params = { n = 1000 },\n"
         "  keel.map 'm' {\n"
         "    over = function(ctx)\n"
         "      local items = {}\n"
         "      for i = 1, ctx.params.n do items[i] = i end\n"
         "      return items\n"
         "    end,\n"
         "    node = keel.fn { run = function(ctx) end },\n"
         "  },\n"
         "}\n";
}

int Main(bool quick) {
  const int n = quick ? 10000 : 100000;
  fs::path dir = fs::temp_directory_path() / ("keel-map-bench-" + std::to_string(getpid()));
  fs::create_directories(dir);
  fs::path script = dir / "map.lua";
  std::ofstream(script) << MapScript();
  std::printf("keel.map of %d no-op Lua items, `keel run` end to end vs. raw limit\n", n);
  double best_keel = 1e9;
  long peak = 0;
  int reps = quick ? 1 : 3;
  for (int r = 0; r < reps; ++r) {
    fs::path db = dir / ("keel" + std::to_string(r) + ".db");
    ChildRun run = RunChild({KEEL_BIN, "run", script.string(), "--db", db.string(), "--json", "-p",
                            "n=" + std::to_string(n)});
    if (!run.ok) {
      std::printf("keel run failed\n");
      fs::remove_all(dir);
      return 1;
    }
    best_keel = std::min(best_keel, run.seconds);
    peak = std::max(peak, run.peak_rss_kb);
  }
  Baseline base((dir / "base.db").string());
  auto deps = MakeDag(Shape::kFan, n + 2);  // 1 -> n -> 1: the n items and two ends
  base.Run(deps);                           // warm-up: Lua states, TBB threads, pages
  double best_base = 1e9;
  for (int r = 0; r < reps; ++r) best_base = std::min(best_base, base.Run(deps));
  double ratio = best_keel / best_base;
  double mb = static_cast<double>(peak) / 1024.0;
  std::printf("  keel run (process)   %8.1f ms   peak RSS %.1f MB\n", best_keel * 1e3, mb);
  std::printf("  raw limit            %8.1f ms   (bare TBB fan-out + Lua + batched SQLite)\n",
              best_base * 1e3);
  std::printf("  ratio                %8.2fx     (target: within 2.5x; RSS under 150 MB)\n", ratio);
  fs::remove_all(dir);
  return 0;
}

}  // namespace
}  // namespace keel::bench

int main(int argc, char** argv) {
  bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  return keel::bench::Main(quick);
}
