#pragma once
// The OTLP/HTTP JSON encoding of spans: an ExportTraceServiceRequest
// (opentelemetry-proto, trace_service.proto) in the protobuf JSON mapping,
// as an OpenTelemetry collector's /v1/traces takes it with
// Content-Type: application/json. Free functions; safe from any thread.

#include <string>
#include <string_view>
#include <vector>

#include "telemetry/span.h"

namespace keel::telemetry {

// {"resourceSpans":[{"resource":{"attributes":[service.name, ...]},
//   "scopeSpans":[{"scope":{"name":"keel","version":...},"spans":[...]}]}]}
// Ids are hex strings, times unix-nanosecond strings, integer attributes
// {"intValue":"N"} (int64 is a string in the JSON mapping), status
// {"code":N,"message":...}. Strings that are not valid UTF-8 are written
// with the bad bytes replaced, so the body is always valid JSON.
std::string OtlpTracesJson(const std::vector<Span>& spans, std::string_view service_name,
                           std::string_view service_version);

}  // namespace keel::telemetry
