#pragma once
// Span, SpanEvent, Attribute: one finished OpenTelemetry span as keel
// exports it (telemetry/otlp_json.h writes them). Plain values.

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace keel::telemetry {

// A span or event attribute: string, integer, double or boolean.
struct Attribute {
  std::string key;
  std::variant<std::string, int64_t, double, bool> value;
};

struct SpanEvent {
  std::string name;
  int64_t time_ns = 0;  // unix nanoseconds
  std::vector<Attribute> attributes;
};

// OTLP's Span.SpanKind and Status.StatusCode values.
enum class SpanKind { kInternal = 1, kServer = 2, kClient = 3 };
enum class SpanStatus { kUnset = 0, kOk = 1, kError = 2 };

struct Span {
  std::string trace_id;        // 32 lower-case hex digits
  std::string span_id;         // 16 lower-case hex digits
  std::string parent_span_id;  // "" for a root span
  std::string name;
  SpanKind kind = SpanKind::kInternal;
  int64_t start_ns = 0;  // unix nanoseconds
  int64_t end_ns = 0;
  std::vector<Attribute> attributes;
  std::vector<SpanEvent> events;
  SpanStatus status = SpanStatus::kUnset;
  std::string status_message;  // only with kError
};

}  // namespace keel::telemetry
