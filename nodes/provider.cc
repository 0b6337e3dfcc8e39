#include "nodes/provider.h"

#include <cstdio>

#include "nodes/anthropic_provider.h"
#include "nodes/json_document.h"
#include "nodes/openai_provider.h"
#include "nodes/wire_json.h"

namespace keel {
namespace {

constexpr size_t kExcerptBytes = 200;

ErrorKind StatusKind(int status) {
  if (status == 429) return ErrorKind::kRateLimited;
  if (status == 408 || status == 409 || status == 425 || (status >= 500 && status <= 599)) {
    return ErrorKind::kTransient;
  }
  return ErrorKind::kPermanent;
}

// The error message of an OpenAI or Anthropic error body
// ({"error":{"message":...}}, or {"error":"..."} as some compatible servers
// send); "" when the body is not one.
std::string ErrorBodyMessage(const std::string& body) {
  JsonDocument doc;
  doc.Parse(body.c_str(), body.size());
  if (doc.HasParseError()) return "";
  const rapidjson::Value* error = wire::Member(doc, "error");
  if (error == nullptr) return "";
  if (error->IsString()) return wire::StringOr(error);
  return wire::StringOr(wire::Member(*error, "message"));
}

// At most kExcerptBytes of `text` (not splitting a UTF-8 sequence), with
// control characters escaped so the message stays on one line.
std::string Excerpt(const std::string& text) {
  size_t end = text.size();
  bool cut = end > kExcerptBytes;
  if (cut) {
    end = kExcerptBytes;
    while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  }
  std::string out;
  for (size_t i = 0; i < end; ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7F) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (cut) out += "...";
  return out;
}

}  // namespace

const Provider* ProviderFor(const std::string& kind) {
  static const OpenAIProvider openai;
  static const AnthropicProvider anthropic;
  if (kind == "openai") return &openai;
  if (kind == "anthropic") return &anthropic;
  return nullptr;
}

Status HttpStatusFailure(const HttpResponse& response, const std::string& provider,
                         double wall_now) {
  std::string message = "provider '" + provider + "': HTTP " + std::to_string(response.status);
  std::string detail = ErrorBodyMessage(response.body);
  if (detail.empty()) detail = response.body;
  if (!detail.empty()) message += ": " + Excerpt(detail);
  ErrorKind kind = StatusKind(response.status);
  double retry_after = kind == ErrorKind::kRateLimited ? response.RetryAfter(wall_now) : -1;
  return Status::Error(kind, std::move(message), retry_after);
}

std::string Redact(std::string text, const std::string& secret) {
  if (secret.empty()) return text;
  static const std::string kRedacted = "[redacted]";
  for (size_t at = text.find(secret); at != std::string::npos;
       at = text.find(secret, at + kRedacted.size())) {
    text.replace(at, secret.size(), kRedacted);
  }
  return text;
}

}  // namespace keel
