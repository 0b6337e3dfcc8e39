#include "telemetry/otel_config.h"

#include <cctype>
#include <cstdlib>
#include <string_view>

namespace keel::telemetry {
namespace {

std::string Trim(std::string_view text) {
  size_t b = 0, e = text.size();
  while (b < e && std::isspace(static_cast<unsigned char>(text[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(text[e - 1]))) --e;
  return std::string(text.substr(b, e - b));
}

std::string Lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// `text` with %XX sequences decoded; false on a malformed one.
bool PercentDecode(std::string_view text, std::string* out) {
  out->clear();
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out->push_back(text[i]);
      continue;
    }
    int hi = i + 1 < text.size() ? HexDigit(text[i + 1]) : -1;
    int lo = i + 2 < text.size() ? HexDigit(text[i + 2]) : -1;
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return true;
}

bool HttpUrl(const std::string& url) {
  std::string lower = Lower(url);
  return (lower.rfind("http://", 0) == 0 && lower.size() > 7) ||
         (lower.rfind("https://", 0) == 0 && lower.size() > 8);
}

// Header names and values must not carry line breaks into the request.
bool HeaderSafe(std::string_view text) {
  for (char c : text) {
    if (c == '\r' || c == '\n' || c == '\0') return false;
  }
  return true;
}

}  // namespace

std::optional<OtelConfig> OtelConfigFromEnv(std::string* warning,
                                            const char* (*getenv)(const char*)) {
  auto get = [getenv](const char* name) -> std::string {
    const char* value = getenv != nullptr ? getenv(name) : std::getenv(name);
    return value != nullptr ? Trim(value) : std::string();
  };
  auto warn = [warning](const std::string& text) {
    if (warning != nullptr && warning->empty()) *warning = text;
  };
  if (Lower(get("OTEL_SDK_DISABLED")) == "true") return std::nullopt;

  OtelConfig config;
  std::string endpoint = get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
  const char* endpoint_var = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
  if (!endpoint.empty()) {
    config.traces_url = endpoint;
  } else {
    endpoint = get("OTEL_EXPORTER_OTLP_ENDPOINT");
    endpoint_var = "OTEL_EXPORTER_OTLP_ENDPOINT";
    if (endpoint.empty()) return std::nullopt;
    while (!endpoint.empty() && endpoint.back() == '/') endpoint.pop_back();
    config.traces_url = endpoint + "/v1/traces";
  }
  if (!HttpUrl(endpoint) || !HeaderSafe(endpoint)) {
    warn(std::string(endpoint_var) + "='" + endpoint +
         "' is not an http:// or https:// URL; traces are off");
    return std::nullopt;
  }

  config.service_name = get("OTEL_SERVICE_NAME");
  if (config.service_name.empty()) config.service_name = "keel";

  for (const char* var : {"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"}) {
    std::string list = get(var);
    size_t start = 0;
    while (start < list.size()) {
      size_t comma = list.find(',', start);
      if (comma == std::string::npos) comma = list.size();
      std::string_view item = std::string_view(list).substr(start, comma - start);
      start = comma + 1;
      if (Trim(item).empty()) continue;
      size_t eq = item.find('=');
      std::string name = Trim(item.substr(0, eq));
      std::string value;
      if (eq == std::string_view::npos || name.empty() ||
          !PercentDecode(Trim(item.substr(eq + 1)), &value) || !HeaderSafe(name) ||
          !HeaderSafe(value)) {
        // Never the value: it is usually a credential.
        warn(std::string(var) + ": an entry is not name=value (with %-encoded value); ignored");
        continue;
      }
      config.headers.emplace_back(std::move(name), std::move(value));
    }
  }

  for (const char* var : {"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"}) {
    std::string text = get(var);
    if (text.empty()) continue;
    char* end = nullptr;
    double ms = std::strtod(text.c_str(), &end);
    if (end == text.c_str() || *end != '\0' || !(ms > 0)) {
      warn(std::string(var) + "='" + text + "' is not a positive number of milliseconds; ignored");
      continue;
    }
    config.timeout = ms > 10000 ? 10 : ms / 1000;
    break;
  }
  return config;
}

}  // namespace keel::telemetry
