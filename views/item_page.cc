#include "views/item_page.h"

#include <cstdlib>

#include "views/run_detail.h"

namespace keel {

void WriteItemPageJson(JsonOut* out, const Store::ItemPage& page) {
  out->BeginObject();
  out->Key("total").Int(page.total);
  out->Key("items");
  out->BeginArray();
  for (const NodeRecord& item : page.items) {
    out->BeginObject();
    out->Key("node").String(item.node);
    size_t open = item.node.rfind('[');
    out->Key("index").Int(open == std::string::npos
                              ? 0
                              : std::strtoll(item.node.c_str() + open + 1, nullptr, 10));
    out->Key("status").String(NodeStatusName(item.status));
    out->Key("attempts").Int(item.attempts);
    out->Key("duration_s").Seconds(NodeSeconds(item));
    out->Key("error").StringOrNull(item.error_message);
    out->EndObject();
  }
  out->EndArray();
  out->EndObject();
}

}  // namespace keel
