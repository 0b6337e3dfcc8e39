#pragma once
// How `keel show` and `keel graph` present the nodes of keel.map, keel.call
// and keel.loop: a map's items (`m[1]`, ... and `m[1]/fetch`) collapse into
// counts on the map's line unless --items asks for them; inner nodes of
// calls and loops (`c/fetch`, `r#2/review`) follow the node that ran them.
// Free functions; safe from any thread.

#include <map>
#include <string>
#include <vector>

#include "engine/store.h"
#include "engine/workflow.h"

namespace keel {

struct ItemTally {
  size_t total = 0;  // from the map's map_started event; else the items recorded
  size_t succeeded = 0;
  size_t failed = 0;
  size_t cancelled = 0;
  size_t running = 0;
};

// The tallies of every map of a run that recorded items, by map name.
std::map<std::string, ItemTally> TallyItems(const std::vector<NodeRecord>& nodes,
                                            const std::vector<EventRecord>& events);

// "1000 items: 997 succeeded, 3 failed" (", N running" while some are).
std::string DescribeTally(const ItemTally& tally);

// Moves every inner node right after the node it belongs to (in the order
// they ran), and without `items` drops map items and their inner nodes.
void ArrangeInnerNodes(std::vector<NodeRecord>* nodes, bool items);

// `workflow` with the recorded inner nodes of its calls and loops added
// (and, with `items`, map items and their nodes), each after the node that
// ran it; maps note their counts in their kind. With `inner` false no
// recorded node is added: every call, loop and map stays one node.
WorkflowSpec WithInnerNodes(const WorkflowSpec& workflow, const std::vector<NodeRecord>& nodes,
                            const std::map<std::string, ItemTally>& tallies, bool items,
                            bool inner = true);

// The recorded inner nodes of each call and loop of `workflow` (not map
// items), counted by status, by the call's or loop's name; `total` is the
// nodes recorded so far.
std::map<std::string, ItemTally> TallyInner(const WorkflowSpec& workflow,
                                            const std::vector<NodeRecord>& nodes);

}  // namespace keel
