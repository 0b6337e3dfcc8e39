#pragma once
// The schedules a loaded workflow file declares, as `keel schedules` lists
// them and `keel validate` prints them. Call from one thread.

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "scripts/workflow_loader.h"
#include "views/schedule_listing.h"

namespace keel::cli {

// The schedules of `script`, keyed by `file` (its path relative to the
// directory listed), with their next ticks after `now` (Unix seconds).
std::vector<ScheduleListing> SchedulesOf(const LoadedScript& script, const std::string& file,
                                         int64_t now);

// "cron 0 3 * * *" or "every 60s".
std::string DescribeSchedule(const ScheduleListing& schedule);

}  // namespace keel::cli
