#include "views/run_outline.h"

#include <algorithm>

#include "views/event_fields.h"

namespace keel {

Result<bool> ReadRunOutline(Store& store, const std::string& run_id, std::vector<NodeRecord>* nodes,
                            std::vector<EventRecord>* events,
                            std::map<std::string, ItemTally>* tallies) {
  auto outline = store.GetRunOutline(run_id);
  if (!outline.ok()) {
    if (outline.status().message().find("not supported") != std::string::npos) return false;
    return outline.status();
  }
  tallies->clear();
  for (const Store::ItemCount& c : outline->items) {
    ItemTally& t = (*tallies)[c.map];
    size_t n = static_cast<size_t>(c.count);
    t.total += n;
    // As TallyItems counts them.
    if (Succeeded(c.status) || c.status == NodeStatus::kSkipped) {
      t.succeeded += n;
    } else if (c.status == NodeStatus::kRunning || c.status == NodeStatus::kPending) {
      t.running += n;
    } else if (c.status == NodeStatus::kCancelled) {
      t.cancelled += n;
    } else {
      t.failed += n;
    }
  }
  for (const EventRecord& e : outline->events) {
    if (e.kind != "map_started") continue;
    auto items = NumberField(e.data_json, "items");
    if (!items) continue;
    ItemTally& t = (*tallies)[e.node];
    t.total = std::max(t.total, static_cast<size_t>(*items));
  }
  *nodes = std::move(outline->nodes);
  *events = std::move(outline->events);
  return true;
}

}  // namespace keel
