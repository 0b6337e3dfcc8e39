#include "views/event_json.h"

#include "views/format.h"

namespace keel {

void WriteEventJson(JsonOut* out, const EventRecord& event, const EventJsonOptions& options) {
  out->BeginObject();
  if (options.with_run) out->Key("run_id").String(event.run_id);
  out->Key("seq").Int(event.seq);
  out->Key("ts").String(FormatIsoUtc(event.ts));
  out->Key("node").StringOrNull(event.node);
  out->Key("kind").String(event.kind);
  out->Key("data").Raw(event.data_json);
  out->EndObject();
}

}  // namespace keel
