#include "engine/bulkhead.h"

namespace keel {

Bulkhead::Ticket Bulkhead::Acquire(const std::string& key, int limit,
                                   std::function<void()> on_granted) {
  MutexLock lock(&mu_);
  Lane& lane = lanes_[key];
  if (lane.in_use < limit && lane.waiting.empty()) {
    ++lane.in_use;
    return 0;
  }
  lane.waiting.emplace_back(++next_, std::move(on_granted));
  return next_;
}

void Bulkhead::Release(const std::string& key) {
  std::function<void()> next;
  {
    MutexLock lock(&mu_);
    Lane& lane = lanes_[key];
    if (lane.waiting.empty()) {
      --lane.in_use;
      return;
    }
    next = std::move(lane.waiting.front().second);  // the slot passes on
    lane.waiting.pop_front();
  }
  next();
}

bool Bulkhead::Cancel(const std::string& key, Ticket ticket) {
  MutexLock lock(&mu_);
  auto& waiting = lanes_[key].waiting;
  for (auto it = waiting.begin(); it != waiting.end(); ++it) {
    if (it->first == ticket) {
      waiting.erase(it);
      return true;
    }
  }
  return false;
}

int Bulkhead::in_use(const std::string& key) {
  MutexLock lock(&mu_);
  return lanes_[key].in_use;
}

}  // namespace keel
