#pragma once
// How a stored run's status and times are presented, by the CLI and the
// service alike: a run recorded running whose process is gone shows as
// interrupted. Free functions; any thread.

#include <optional>
#include <string>

#include "engine/store.h"

namespace keel {

// The status shown for `run`: its recorded status, except that a run
// recorded running whose owner process is gone shows as "interrupted".
std::string RunStatusLabel(const RunRecord& run, double wall_now);

// How long `run` took, or has taken so far while `label` (from
// RunStatusLabel) is "running"; unknown (nullopt) for an interrupted run.
std::optional<double> RunSeconds(const RunRecord& run, const std::string& label, double wall_now);

// The part of RunSeconds some process was running it: the time it spent
// stopped before each resume (RunRecord::idle_s) taken out.
std::optional<double> ActiveSeconds(const RunRecord& run, const std::string& label,
                                    double wall_now);

}  // namespace keel
