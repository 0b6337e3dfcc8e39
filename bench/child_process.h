#pragma once
// Runs a program as the benchmarks' subject: its wall time from spawn to
// exit, its exit status and its peak resident set size. Call from one thread
// at a time.

#include <string>
#include <vector>

namespace keel::bench {

struct ChildRun {
  bool ok = false;      // spawned and exited with status 0
  double seconds = 0;   // spawn to exit, wall time
  double cpu_seconds = 0;  // user + system time of the child, all its threads
  long peak_rss_kb = 0; // the child's ru_maxrss
};

// Runs `args` (args[0] is a path) with stdout and stderr sent to /dev/null.
ChildRun RunChild(const std::vector<std::string>& args);

// User + system CPU seconds this process has used so far, all threads.
double SelfCpuSeconds();

// The median of `values` (not empty); sorts them.
double Median(std::vector<double>& values);

}  // namespace keel::bench
