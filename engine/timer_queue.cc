#include "engine/timer_queue.h"

namespace keel {

TimerId TimerQueue::Add(double due, std::function<void()> fn) {
  TimerId id = next_id_++;
  by_due_.emplace(std::make_pair(due, id), std::move(fn));
  due_of_.emplace(id, due);
  return id;
}

bool TimerQueue::Cancel(TimerId id) {
  auto it = due_of_.find(id);
  if (it == due_of_.end()) return false;
  by_due_.erase(std::make_pair(it->second, id));
  due_of_.erase(it);
  return true;
}

std::function<void()> TimerQueue::PopDue(double now) {
  if (by_due_.empty() || by_due_.begin()->first.first > now) return {};
  auto node = by_due_.extract(by_due_.begin());
  due_of_.erase(node.key().second);
  return std::move(node.mapped());
}

}  // namespace keel
