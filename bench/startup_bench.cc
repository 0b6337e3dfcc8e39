// Start-up cost of small commands: `keel validate` of a 3-node file,
// `keel runs`, and `keel run` of it (store on), against the sqlite3 shell
// running `select 1` on an in-memory database, measured in the same run.
//
//   startup_bench            51 runs of each
//   startup_bench --quick    11 runs of each (a smoke test for ctest)

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
};

int Main(bool quick) {
  fs::path dir = fs::temp_directory_path() / ("keel-startup-" + std::to_string(getpid()));
  fs::create_directories(dir);
  std::string flow = (dir / "three.lua").string();
  std::ofstream(flow) << kThreeNodes;
  std::string db = (dir / "startup.db").string();
  std::vector<Subject> subjects = {
      {"sqlite3 :memory: 'select 1'", {"/usr/bin/sqlite3", ":memory:", "select 1"}, 0, {}},
      {"keel validate (3 nodes)", {KEEL_BIN, "validate", flow}, 5, {}},
      {"keel runs", {KEEL_BIN, "runs", "--db", db}, 5, {}},
      {"keel run (3 nodes, store on)", {KEEL_BIN, "run", flow, "--db", db}, 8, {}},
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
    }
  }
  double sqlite_ms = Median(subjects[0].ms);
  std::printf("start-up, wall time from spawn to exit, median of %d runs\n", reps);
  for (Subject& s : subjects) {
    double median = Median(s.ms);
    std::printf("  %-30s %6.2f ms  best %6.2f ms  %5.2fx sqlite3", s.label, median, s.ms[0],
                median / sqlite_ms);
    if (s.target_ms > 0) std::printf("  (target < %.0f ms)", s.target_ms);
    std::printf("\n");
  }
  fs::remove_all(dir);
  return 0;
}

}  // namespace
}  // namespace keel::bench

int main(int argc, char** argv) {
  bool quick = argc == 2 && std::strcmp(argv[1], "--quick") == 0;
  return keel::bench::Main(quick);
}
