#include "service/tick_plan.h"

#include <algorithm>

namespace keel::service {

TickPlan PlanTicks(const ScheduleRule& rule, int64_t from, int64_t now, int64_t window,
                   int max_start) {
  TickPlan plan;
  const int64_t oldest = now - window;  // the oldest tick still started
  int64_t t = rule.Next(from);
  if (t > now) return plan;
  if (t < oldest) {
    plan.first_skipped = t;
    // Jump to the window instead of walking every skipped tick.
    int64_t in_window = rule.Next(oldest - 1);
    if (rule.is_cron()) {
      int64_t count = 0;
      int64_t last = t;
      for (int64_t s = t; s < oldest && count < 1000000; s = rule.Next(s)) {
        last = s;
        ++count;
      }
      plan.skipped = count;
      plan.last_skipped = last;
    } else {
      plan.skipped = (in_window - t) / rule.every();
      plan.last_skipped = in_window - rule.every();
    }
    t = in_window;
  }
  for (; t <= now; t = rule.Next(t)) plan.start.push_back(t);
  if (max_start >= 0 && plan.start.size() > static_cast<size_t>(max_start)) {
    size_t drop = plan.start.size() - static_cast<size_t>(max_start);
    if (plan.skipped == 0) plan.first_skipped = plan.start.front();
    plan.skipped += static_cast<int64_t>(drop);
    plan.last_skipped = plan.start[drop - 1];
    plan.start.erase(plan.start.begin(), plan.start.begin() + static_cast<long>(drop));
  }
  return plan;
}

}  // namespace keel::service
