#include "views/event_json.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <optional>
#include <string>
#include <string_view>

#include "engine/event_severity.h"
#include "engine/usage.h"
#include "views/format.h"

namespace keel {
namespace {

// The object an event's recorded bodies sit in: the data of an llm_call,
// or the wrapped data of a fallback_event around one ({fallback, node,
// event: KIND, data}); null for anything else.
rapidjson::Value* CallData(const EventRecord& event, rapidjson::Document& doc) {
  if (!doc.IsObject()) return nullptr;
  if (event.kind == kUsageEventKind) return &doc;
  auto kind = doc.FindMember("event");
  auto data = doc.FindMember("data");
  if (kind == doc.MemberEnd() || !kind->value.IsString() ||
      std::string_view(kind->value.GetString()) != kUsageEventKind || data == doc.MemberEnd() ||
      !data->value.IsObject()) {
    return nullptr;
  }
  return &data->value;
}

// `data_json` without recorded bodies, or nullopt when it has none.
std::optional<std::string> WithoutBodies(const EventRecord& event) {
  if (event.kind != kUsageEventKind && event.kind != "fallback_event") return std::nullopt;
  if (event.data_json.find("\"request\"") == std::string::npos &&
      event.data_json.find("\"reply\"") == std::string::npos) {
    return std::nullopt;
  }
  rapidjson::Document doc;
  if (doc.Parse(event.data_json.c_str(), event.data_json.size()).HasParseError()) {
    return std::nullopt;
  }
  rapidjson::Value* data = CallData(event, doc);
  if (data == nullptr) return std::nullopt;
  bool dropped = data->RemoveMember("request");
  dropped = data->RemoveMember("reply") || dropped;
  if (!dropped) return std::nullopt;
  data->AddMember("recorded", true, doc.GetAllocator());
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  doc.Accept(writer);
  return std::string(buffer.GetString(), buffer.GetSize());
}

}  // namespace

std::string BriefEventData(const EventRecord& event) {
  std::optional<std::string> brief = WithoutBodies(event);
  return brief ? std::move(*brief) : event.data_json;
}

void WriteEventJson(JsonOut* out, const EventRecord& event, const EventJsonOptions& options) {
  out->BeginObject();
  if (options.with_run) out->Key("run_id").String(event.run_id);
  out->Key("seq").Int(event.seq);
  out->Key("ts").String(FormatIsoUtc(event.ts));
  out->Key("node").StringOrNull(event.node);
  out->Key("kind").String(event.kind);
  out->Key("severity").String(SeverityName(EventSeverity(event.kind, event.data_json)));
  std::optional<std::string> brief;
  if (!options.bodies) brief = WithoutBodies(event);
  out->Key("data").Raw(brief ? *brief : event.data_json);
  out->EndObject();
}

}  // namespace keel
