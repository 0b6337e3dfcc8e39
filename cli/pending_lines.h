#pragma once
// PendingLines: lines waiting to be written to stderr, batched: a line waits
// up to kFlushDelay for others to share its write, so a burst of node events
// costs the workers a few writes instead of one each. The progress displays
// that write lines (cli/progress.cc, cli/json_log_progress.cc) share one
// with the timer that writes them.
// Thread-safe: mu guards every field.

#include <memory>
#include <string>
#include <string_view>

#include "engine/clock.h"
#include "engine/mutex.h"

namespace keel::cli {

struct PendingLines {
  // How long a line may wait for others to share its write.
  static constexpr double kFlushDelay = 0.01;

  Mutex mu;
  std::string text GUARDED_BY(mu);
  bool scheduled GUARDED_BY(mu) = false;  // a flush timer is armed

  // Writes what is pending in one go.
  void Flush();

  // Adds `lines` and arms a timer of `clock` to write them, unless one is
  // armed. The timer may fire after the progress is gone: it holds `self`.
  static void Add(const std::shared_ptr<PendingLines>& self, Clock* clock, std::string_view lines);
};

}  // namespace keel::cli
