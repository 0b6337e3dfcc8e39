#include "nodes/mock_directives.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "nodes/json_document.h"
#include "nodes/mock_reply.h"
#include "nodes/trim.h"
#include "nodes/untrusted_json.h"
#include "nodes/wire_json.h"

namespace keel {
namespace {

bool ParseNumber(const std::string& text, double* out) {
  if (text.empty()) return false;
  char* end = nullptr;
  *out = std::strtod(text.c_str(), &end);
  return *end == '\0' && std::isfinite(*out) && *out >= 0;
}

bool ParseCount(const std::string& text, int64_t* out) {
  if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos) return false;
  *out = std::strtoll(text.c_str(), nullptr, 10);
  return true;
}

std::optional<std::string> ApplyDirective(const std::string& key, const std::string& value,
                                          MockDirectives* d) {
  auto bad = [&](const std::string& why) {
    return std::optional<std::string>("mock directive [[mock:" + key + "=" + value + "]]: " + why);
  };
  double number = 0;
  if (key == "fault") {
    if (!IsMockFault(value)) {
      return bad(
          "unknown fault (one of 500 502 503 529 429 400 401 403 404 hang malformed truncated "
          "reset)");
    }
    d->fault = value;
  } else if (key == "times") {
    if (!ParseCount(value, &d->times)) return bad("expected a count");
  } else if (key == "retry_after") {
    if (!ParseNumber(value, &d->retry_after)) return bad("expected seconds");
  } else if (key == "latency") {
    if (!ParseNumber(value, &number)) return bad("expected milliseconds");
    d->latency_ms = number;
  } else if (key == "reply") {
    d->reply = value;
  } else if (key == "call") {
    std::string spec(TrimBlanks(value));
    size_t space = spec.find_first_of(" \t");
    std::string name = spec.substr(0, space);
    std::string args =
        space == std::string::npos ? "{}" : std::string(TrimBlanks(spec.substr(space)));
    JsonDocument doc;  // prompt text: parsed without recursion, depth capped
    if (name.empty() || !ParseUntrustedJson(args, &doc).ok() || !doc.IsObject()) {
      return bad("expected NAME {JSON object}");
    }
    d->calls.emplace_back(name, wire::Serialize(doc));
  } else if (key == "tokens") {
    size_t comma = value.find(',');
    int64_t p = 0, c = 0;
    if (comma == std::string::npos || !ParseCount(value.substr(0, comma), &p) ||
        !ParseCount(value.substr(comma + 1), &c)) {
      return bad("expected PROMPT,COMPLETION");
    }
    d->tokens = std::make_pair(p, c);
  } else {
    return "unknown mock directive '" + key +
           "' (fault, times, retry_after, latency, reply, call, tokens)";
  }
  return std::nullopt;
}

}  // namespace

std::string TakeMockDirectives(const std::string& text, MockDirectives* d,
                               std::optional<std::string>* error) {
  static const std::string kOpen = "[[mock:";
  std::string rest;
  size_t pos = 0;
  while (true) {
    size_t open = text.find(kOpen, pos);
    if (open == std::string::npos) break;
    size_t close = text.find("]]", open + kOpen.size());
    if (close == std::string::npos) {
      *error = "mock directive without closing ]]";
      break;
    }
    rest += text.substr(pos, open - pos);
    std::string inner = text.substr(open + kOpen.size(), close - open - kOpen.size());
    d->written += text.substr(open, close + 2 - open);
    size_t eq = inner.find('=');
    if (eq == std::string::npos) {
      *error = "mock directive [[mock:" + inner + "]] has no '='";
    } else if (auto bad = ApplyDirective(std::string(TrimBlanks(inner.substr(0, eq))),
                                         inner.substr(eq + 1), d)) {
      *error = std::move(bad);
    }
    if (*error) break;
    pos = close + 2;
  }
  rest += text.substr(std::min(pos, text.size()));
  return std::string(TrimBlanks(rest));
}

}  // namespace keel
