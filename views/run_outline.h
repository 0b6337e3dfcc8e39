#pragma once
// Reads a run for a view that collapses map items into their map's counts
// (`keel show` without --items, GET /api/v1/runs/ID?items=false) without
// reading the items: the store leaves them out and counts them in SQL
// (Store::GetRunOutline), so a map of 100,000 items costs one GROUP BY.
// Free function; any thread.

#include <map>
#include <string>
#include <vector>

#include "engine/store.h"
#include "views/item_view.h"

namespace keel {

// Fills `nodes` (no items, no items' inner nodes), `events` (theirs, and
// every usage event) and `tallies` (as TallyItems would) for run `run_id`
// (an exact id). Returns false, filling nothing, when the store cannot
// (then read everything); fails with the store's other errors.
Result<bool> ReadRunOutline(Store& store, const std::string& run_id, std::vector<NodeRecord>* nodes,
                            std::vector<EventRecord>* events,
                            std::map<std::string, ItemTally>* tallies);

}  // namespace keel
