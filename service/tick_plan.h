#pragma once
// PlanTicks: which ticks of a schedule to start now — the ones that came due
// since the last one started, within the catch-up window — and which were
// missed for good. Pure; safe from any thread.

#include <cstdint>
#include <vector>

#include "engine/cron_schedule.h"

namespace keel::service {

struct TickPlan {
  std::vector<int64_t> start;  // ticks to start, oldest first (Unix seconds)
  // Ticks after `from` that are too old to start: the first and last of
  // them, and how many (0: none).
  int64_t skipped = 0;
  int64_t first_skipped = 0;
  int64_t last_skipped = 0;
};

// The ticks of `rule` after `from` (the last tick started, or the moment
// the schedule was first seen) and at or before `now`. Those older than
// `now - window` are skipped; of the rest, at most `max_start` (the newest)
// are started and the older ones skipped too.
TickPlan PlanTicks(const ScheduleRule& rule, int64_t from, int64_t now, int64_t window,
                   int max_start);

}  // namespace keel::service
