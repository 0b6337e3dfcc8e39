#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <string_view>

#include "nodes/http_loop.h"
#include "nodes/trim.h"

namespace keel {
namespace {

// A non-negative decimal number filling all of `text`; -1 otherwise.
double ParseSeconds(const std::string& text) {
  if (text.empty() || !(std::isdigit(static_cast<unsigned char>(text[0])) || text[0] == '.')) {
    return -1;
  }
  char* end = nullptr;
  double value = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || !std::isfinite(value) || value < 0) return -1;
  return value;
}

}  // namespace

std::string HttpResponse::Header(const std::string& name) const {
  for (const auto& [key, value] : headers) {
    if (key == name) return value;
  }
  return "";
}

double HttpResponse::RetryAfter(double wall_now) const {
  std::string ms = Header("retry-after-ms");
  if (!ms.empty()) {
    double value = ParseSeconds(ms);
    if (value >= 0) return value / 1000;
  }
  std::string text = Header("retry-after");
  if (text.empty()) return -1;
  double delay = ParseSeconds(text);
  if (delay >= 0) return delay;
  time_t when = curl_getdate(text.c_str(), nullptr);
  if (when == -1) return -1;
  return std::max(0.0, static_cast<double>(when) - wall_now);
}

void HttpResponse::AddHeaderLine(std::string_view line) {
  if (line.substr(0, 5) == "HTTP/") {
    // A new response begins (after a 1xx): keep only its headers.
    headers.clear();
    return;
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return;
  std::string_view trimmed = TrimBlanks(line.substr(0, colon));
  if (trimmed.empty()) return;  // ": x", "  : x": no name
  if (headers.capacity() == 0) headers.reserve(12);
  std::string& name =
      headers.emplace_back(std::string(trimmed), std::string(TrimBlanks(line.substr(colon + 1))))
          .first;
  for (char& c : name) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

}  // namespace keel
