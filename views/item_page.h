#pragma once
// A page of a map's items as GET /api/v1/runs/ID/nodes/MAP/items answers
// it: {"total", "items": [{"node", "index", "status", "attempts",
// "duration_s", "error"}]}. Free function; any thread.

#include "engine/store.h"
#include "views/json_out.h"

namespace keel {

void WriteItemPageJson(JsonOut* out, const Store::ItemPage& page);

}  // namespace keel
