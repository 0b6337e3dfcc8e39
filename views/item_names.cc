#include "views/item_names.h"

#include <fmt/format.h>

namespace keel {

bool SplitItemName(std::string_view name, std::string_view* map, bool* is_item) {
  size_t open = name.find('[');
  if (open == std::string_view::npos) {
    *map = {};
    *is_item = false;
    return false;
  }
  *map = name.substr(0, open);
  size_t close = name.find(']', open);
  *is_item = close == name.size() - 1 && close > open + 1;
  return true;
}

std::string ItemCounts(size_t total, size_t succeeded, size_t failed, size_t cancelled,
                       size_t running) {
  std::string text = total > 0 ? fmt::format("{} items: ", total) : std::string("items: ");
  text += fmt::format("{} succeeded, {} failed", succeeded, failed);
  if (cancelled > 0) text += fmt::format(", {} cancelled", cancelled);
  if (running > 0) text += fmt::format(", {} running", running);
  return text;
}

}  // namespace keel
