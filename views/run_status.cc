#include "views/run_status.h"

#include <algorithm>

#include "engine/process_owner.h"

namespace keel {

std::string RunStatusLabel(const RunRecord& run, double wall_now) {
  if (run.status == RunStatus::kRunning && !OwnerAlive(run.owner, wall_now - run.heartbeat)) {
    return "interrupted";
  }
  return std::string(RunStatusName(run.status));
}

std::optional<double> RunSeconds(const RunRecord& run, const std::string& label, double wall_now) {
  if (run.finished_at > 0) return std::max(0.0, run.finished_at - run.created_at);
  if (label == "running") return std::max(0.0, wall_now - run.created_at);
  return std::nullopt;
}

std::optional<double> ActiveSeconds(const RunRecord& run, const std::string& label,
                                    double wall_now) {
  std::optional<double> elapsed = RunSeconds(run, label, wall_now);
  if (!elapsed) return std::nullopt;
  return std::max(0.0, *elapsed - run.idle_s);
}

}  // namespace keel
