#include "telemetry/otlp_json.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <string>
#include <type_traits>

#include "engine/utf8.h"

namespace keel::telemetry {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void String(Writer& w, std::string_view text) {
  if (IsUtf8(text)) {
    w.String(text.data(), static_cast<rapidjson::SizeType>(text.size()));
    return;
  }
  std::string valid = ReplaceInvalidUtf8(text);
  w.String(valid.data(), static_cast<rapidjson::SizeType>(valid.size()));
}

void Nanos(Writer& w, int64_t ns) { String(w, std::to_string(ns)); }

void Attributes(Writer& w, const std::vector<Attribute>& attributes) {
  w.Key("attributes");
  w.StartArray();
  for (const Attribute& a : attributes) {
    w.StartObject();
    w.Key("key");
    String(w, a.key);
    w.Key("value");
    w.StartObject();
    std::visit(
        [&w](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, std::string>) {
            w.Key("stringValue");
            String(w, v);
          } else if constexpr (std::is_same_v<T, int64_t>) {
            w.Key("intValue");
            String(w, std::to_string(v));
          } else if constexpr (std::is_same_v<T, double>) {
            w.Key("doubleValue");
            w.Double(v);
          } else {
            w.Key("boolValue");
            w.Bool(v);
          }
        },
        a.value);
    w.EndObject();
    w.EndObject();
  }
  w.EndArray();
}

void WriteSpan(Writer& w, const Span& s) {
  w.StartObject();
  w.Key("traceId");
  String(w, s.trace_id);
  w.Key("spanId");
  String(w, s.span_id);
  if (!s.parent_span_id.empty()) {
    w.Key("parentSpanId");
    String(w, s.parent_span_id);
  }
  w.Key("name");
  String(w, s.name);
  w.Key("kind");
  w.Int(static_cast<int>(s.kind));
  w.Key("startTimeUnixNano");
  Nanos(w, s.start_ns);
  w.Key("endTimeUnixNano");
  Nanos(w, s.end_ns < s.start_ns ? s.start_ns : s.end_ns);
  Attributes(w, s.attributes);
  if (!s.events.empty()) {
    w.Key("events");
    w.StartArray();
    for (const SpanEvent& e : s.events) {
      w.StartObject();
      w.Key("timeUnixNano");
      Nanos(w, e.time_ns);
      w.Key("name");
      String(w, e.name);
      Attributes(w, e.attributes);
      w.EndObject();
    }
    w.EndArray();
  }
  w.Key("status");
  w.StartObject();
  if (s.status == SpanStatus::kError && !s.status_message.empty()) {
    w.Key("message");
    String(w, s.status_message);
  }
  w.Key("code");
  w.Int(static_cast<int>(s.status));
  w.EndObject();
  w.EndObject();
}

}  // namespace

std::string OtlpTracesJson(const std::vector<Span>& spans, std::string_view service_name,
                           std::string_view service_version) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  w.Key("resourceSpans");
  w.StartArray();
  w.StartObject();
  w.Key("resource");
  w.StartObject();
  Attributes(w, {{"service.name", std::string(service_name)},
                 {"service.version", std::string(service_version)},
                 {"telemetry.sdk.name", std::string("keel")},
                 {"telemetry.sdk.language", std::string("cpp")}});
  w.EndObject();
  w.Key("scopeSpans");
  w.StartArray();
  w.StartObject();
  w.Key("scope");
  w.StartObject();
  w.Key("name");
  w.String("keel");
  w.Key("version");
  String(w, service_version);
  w.EndObject();
  w.Key("spans");
  w.StartArray();
  for (const Span& s : spans) WriteSpan(w, s);
  w.EndArray();
  w.EndObject();
  w.EndArray();
  w.EndObject();
  w.EndArray();
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

}  // namespace keel::telemetry
