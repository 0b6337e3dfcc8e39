#pragma once
// Names of keel.map items as the store records them ("m[12]", "m[3]/fetch")
// and their counts in words, shared by the CLI's progress display, `keel
// show` and the service. Free functions; any thread.

#include <cstddef>
#include <string>
#include <string_view>

namespace keel {

// Splits a recorded node name into its map and item: "c/m[12]" -> map
// "c/m", true; "m[3]/fetch" -> map "m", false (an item's inner node); any
// name without '[' -> false with `map` empty.
bool SplitItemName(std::string_view name, std::string_view* map, bool* is_item);

// "1000 items: 997 succeeded, 3 failed" (", N cancelled" and ", N running"
// when there are).
std::string ItemCounts(size_t total, size_t succeeded, size_t failed, size_t cancelled,
                       size_t running);

}  // namespace keel
