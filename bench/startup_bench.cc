// Start-up cost of small commands: `keel validate` of a 3-node file,
// `keel runs`, and `keel run` of it (store on), against the sqlite3 shell
// running `select 1` on an in-memory database, measured in the same run.
//
//   startup_bench            51 runs of each
//   startup_bench --quick    11 runs of each (a smoke test for ctest)
//   startup_bench --keel PATH  measure another keel binary

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "bench/child_process.h"

namespace keel::bench {
namespace {

namespace fs = std::filesystem;

constexpr const char* kThreeNodes =
    "local keel = require 'keel'\n"
    "return keel.workflow 'three' {\n"
    "  keel.fn 'a' { run = function(ctx) return 1 end },\n"
    "  keel.fn 'b' { after = {'a'}, run = function(ctx) return ctx.deps.a + 1 end },\n"
    "  keel.fn 'c' { after = {'b'}, run = function(ctx) return ctx.deps.b + 1 end },\n"
    "}\n";

struct Subject {
  const char* label;
  std::vector<std::string> args;
  double target_ms;  // 0: none
  std::vector<double> ms;
  std::vector<double> cpu_ms;  // user + system
};

int Main(const std::string& keel, bool quick) {
  fs::path dir = fs::temp_directory_path() / ("keel-startup-" + std::to_string(getpid()));
  fs::create_directories(dir);
  std::string flow = (dir / "three.lua").string();
  std::ofstream(flow) << kThreeNodes;
  std::string db = (dir / "startup.db").string();
  std::vector<Subject> subjects = {
      {"sqlite3 :memory: 'select 1'", {"/usr/bin/sqlite3", ":memory:", "select 1"}, 0, {}, {}},
      {"keel validate (3 nodes)", {keel, "validate", flow}, 5, {}, {}},
      {"keel runs", {keel, "runs", "--db", db}, 5, {}, {}},
      {"keel run (3 nodes, store on)", {keel, "run", flow, "--db", db}, 8, {}, {}},
  };
  // One run of each first: creates the database, warms the page cache.
  for (Subject& s : subjects) {
    if (!RunChild(s.args).ok) {
      std::fprintf(stderr, "startup_bench: `%s` failed\n", s.label);
      fs::remove_all(dir);
      return 1;
    }
  }
  const int reps = quick ? 11 : 51;
  for (int i = 0; i < reps; ++i) {
    for (Subject& s : subjects) {  // interleaved, so that machine noise hits all alike
      ChildRun run = RunChild(s.args);
      if (!run.ok) {
        std::fprintf(stderr, "startup_bench: `%s` failed\n", s.label);
        fs::remove_all(dir);
        return 1;
      }
      s.ms.push_back(run.seconds * 1e3);
      s.cpu_ms.push_back(run.cpu_seconds * 1e3);
    }
  }
  double sqlite_ms = Median(subjects[0].ms);
  double sqlite_cpu_ms = Median(subjects[0].cpu_ms);
  // CPU time (user + system) too: on a busy machine wall time mostly measures the others.
  std::printf("start-up of %s, wall time from spawn to exit, median of %d runs\n", keel.c_str(),
              reps);
  for (Subject& s : subjects) {
    double median = Median(s.ms);
    double cpu = Median(s.cpu_ms);
    std::printf("  %-30s %6.2f ms  best %6.2f ms  %5.2fx sqlite3 | CPU %6.2f ms %5.2fx", s.label,
                median, s.ms[0], median / sqlite_ms, cpu, cpu / sqlite_cpu_ms);
    if (s.target_ms > 0) std::printf("  (target < %.0f ms)", s.target_ms);
    std::printf("\n");
  }
  fs::remove_all(dir);
  return 0;
}

}  // namespace
}  // namespace keel::bench

int main(int argc, char** argv) {
  bool quick = false;
  std::string keel = KEEL_BIN;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) {
      quick = true;
    } else if (std::strcmp(argv[i], "--keel") == 0 && i + 1 < argc) {
      keel = argv[++i];
    } else {
      std::fprintf(stderr, "usage: startup_bench [--quick] [--keel PATH]\n");
      return 2;
    }
  }
  return keel::bench::Main(keel, quick);
}
