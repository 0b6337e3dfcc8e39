#pragma once
// Owner: which process owns a run, and whether that process still lives.
//
// A run row records its owner; `keel resume` may take over a run only when
// the owner is dead. Free functions; safe from any thread.

#include <cstdint>
#include <string>

namespace keel {

struct Owner {
  int64_t pid = 0;
  std::string host;
  // Start time of the process (clock ticks since boot, /proc/PID/stat field
  // 22), so a recycled pid is not mistaken for the owner.
  int64_t start_ticks = 0;
};

// The calling process.
Owner CurrentOwner();

// True when `owner` may still be running the run. On this host: the pid
// exists with the same start time. On another host: its last heartbeat is
// younger than `stale_after` seconds (`heartbeat_age` seconds ago).
bool OwnerAlive(const Owner& owner, double heartbeat_age, double stale_after = 30.0);

}  // namespace keel
