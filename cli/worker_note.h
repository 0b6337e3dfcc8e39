#pragma once
// What the parts of `keel worker` (worker.cc, worker_upkeep.cc) share: the
// monotonic seconds they time leases and sweeps with, and their notes on
// stderr. Any thread.

#include <chrono>
#include <cstdio>
#include <string>

namespace keel::cli {

inline double MonoNow() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

inline void Note(const std::string& message) {
  std::fprintf(stderr, "keel worker: %s\n", message.c_str());
}

}  // namespace keel::cli
