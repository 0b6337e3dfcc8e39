#pragma once
// OtelConfig: where and how a keel process exports traces, read from the
// standard OpenTelemetry environment variables. A plain value.

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace keel::telemetry {

struct OtelConfig {
  std::string traces_url;    // where batches are POSTed: BASE/v1/traces or the full URL
  std::string service_name;  // resource attribute service.name
  std::vector<std::pair<std::string, std::string>> headers;  // added to every export
  double timeout = 2;  // seconds one export may take (connection included)
};

// The export configuration the environment asks for, or nullopt when traces
// are off: OTEL_SDK_DISABLED=true, or neither OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
// (the full URL; wins) nor OTEL_EXPORTER_OTLP_ENDPOINT (a base URL; traces
// go to BASE/v1/traces) is set. OTEL_SERVICE_NAME names the service ("keel"
// when unset); OTEL_EXPORTER_OTLP_HEADERS (and _TRACES_HEADERS) add headers,
// "k=v,k=v" with percent-encoded values; OTEL_EXPORTER_OTLP_TIMEOUT (and
// _TRACES_TIMEOUT) in milliseconds caps each export (default 2000, at most
// 10000). A value that cannot be used (an endpoint that is not http:// or
// https://, a malformed header or timeout) turns traces off, or drops that
// setting, with a sentence in *warning (when not null) naming the variable;
// it never stops the command. `getenv` reads a variable (std::getenv when
// null), so tests can supply their own.
std::optional<OtelConfig> OtelConfigFromEnv(std::string* warning,
                                            const char* (*getenv)(const char*) = nullptr);

}  // namespace keel::telemetry
