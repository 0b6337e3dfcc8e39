#pragma once
// Exit codes of the keel executable and the one way errors are printed.

#include <cstdio>
#include <string_view>

#include "engine/node_status.h"

namespace keel::cli {

constexpr int kExitSucceeded = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;  // usage, script or validation error, bad database
constexpr int kExitDegraded = 3;
// The run is parked on a signal or a durable timer (DESIGN.md §8).
constexpr int kExitWaiting = 4;
// stdout could not be written (disk full, I/O error, closed pipe): the
// command's result is lost, whatever the run's recorded status.
constexpr int kExitOutput = 5;

inline int ExitCodeFor(RunStatus status) {
  switch (status) {
    case RunStatus::kSucceeded:
      return kExitSucceeded;
    case RunStatus::kDegraded:
      return kExitDegraded;
    case RunStatus::kWaiting:
      return kExitWaiting;
    default:
      return kExitFailed;
  }
}

// Prints "keel: <message>" on stderr.
inline void PrintError(std::string_view message) {
  std::fprintf(stderr, "keel: %.*s\n", static_cast<int>(message.size()), message.data());
}

// Prints `message` as PrintError does and returns kExitUsage: how a command
// stops on a usage, script or database error.
inline int UsageError(std::string_view message) {
  PrintError(message);
  return kExitUsage;
}

}  // namespace keel::cli
