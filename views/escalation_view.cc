#include "views/escalation_view.h"

#include "views/event_fields.h"

namespace keel {

std::vector<EscalationSummary> ReadEscalations(const std::vector<EventRecord>& events) {
  std::vector<EscalationSummary> out;
  for (const EventRecord& event : events) {
    if (!event.node.empty()) continue;
    if (event.kind == "escalation_started") {
      EscalationSummary& started = out.emplace_back();
      started.number = static_cast<int>(NumberField(event.data_json, "escalation").value_or(0));
      started.workflow = StringField(event.data_json, "workflow");
    } else if (event.kind == "escalation_finished" && !out.empty()) {
      out.back().status = StringField(event.data_json, "status");
      out.back().error = StringField(event.data_json, "error");
    }
  }
  return out;
}

void WriteEscalationsJson(JsonOut* out, const std::vector<EscalationSummary>& escalations) {
  out->BeginArray();
  for (const EscalationSummary& escalation : escalations) {
    out->BeginObject();
    out->Key("number").Int(escalation.number);
    out->Key("workflow").String(escalation.workflow);
    out->Key("status").String(escalation.status);
    out->Key("error").StringOrNull(escalation.error);
    out->EndObject();
  }
  out->EndArray();
}

}  // namespace keel
