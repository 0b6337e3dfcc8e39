#include "nodes/provider.h"

#include <cstdio>
#include <cstdlib>

#include "engine/utf8.h"
#include "nodes/anthropic_provider.h"
#include "nodes/json_document.h"
#include "nodes/openai_provider.h"
#include "nodes/untrusted_json.h"
#include "nodes/wire_json.h"

namespace keel {
namespace {

constexpr size_t kExcerptBytes = 200;

using rapidjson::Value;

ErrorKind StatusKind(int status) {
  if (status == 429) return ErrorKind::kRateLimited;
  if (status == 408 || status == 409 || status == 425 || (status >= 500 && status <= 599)) {
    return ErrorKind::kTransient;
  }
  return ErrorKind::kPermanent;
}

// The message of an error value: {"message": ...} or a plain string.
std::string ErrorMessage(const Value& error) {
  if (error.IsString()) return wire::StringOr(&error);
  return wire::StringOr(wire::Member(error, "message"));
}

// The error message of an OpenAI or Anthropic error body
// ({"error":{"message":...}}, or {"error":"..."} as some compatible servers
// send); "" when the body is not one.
std::string ErrorBodyMessage(const std::string& body) {
  JsonDocument doc;
  if (!ParseUntrustedJson(body, &doc).ok()) return "";
  const Value* error = wire::Member(doc, "error");
  return error == nullptr ? "" : ErrorMessage(*error);
}

// An HTTP-like status code in member `name` of `error` (a number or a
// numeric string); 0 when there is none.
int EmbeddedCode(const Value& error, const char* name) {
  const Value* code = wire::Member(error, name);
  long value = 0;
  if (code != nullptr && code->IsInt()) {
    value = code->GetInt();
  } else if (code != nullptr && code->IsString()) {
    char* end = nullptr;
    value = std::strtol(code->GetString(), &end, 10);
    if (end == code->GetString() || *end != '\0') value = 0;
  }
  return value >= 100 && value <= 599 ? static_cast<int>(value) : 0;
}

// The kind an embedded error's code or type means (see ReplyError).
ErrorKind EmbeddedKind(int code, const std::string& type) {
  if (code >= 400) return StatusKind(code);
  if (type == "rate_limit_error") return ErrorKind::kRateLimited;
  if (type == "invalid_request_error" || type == "authentication_error" ||
      type == "permission_error" || type == "not_found_error") {
    return ErrorKind::kPermanent;
  }
  return ErrorKind::kTransient;
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
  if (response.status >= 300 && response.status < 400) {
    std::string location = response.Header("location");
    if (!location.empty()) message += " (redirected to " + Excerpt(location) + ")";
  }
  ErrorKind kind = StatusKind(response.status);
  double retry_after = kind == ErrorKind::kRateLimited ? response.RetryAfter(wall_now) : -1;
  if (retry_after > kMaxRetryAfter) {
    char note[96];
    std::snprintf(note, sizeof note, " (Retry-After of %.0f s cut to %.0f s)", retry_after,
                  kMaxRetryAfter);
    message += note;
    retry_after = kMaxRetryAfter;
  }
  return Status::Error(kind, std::move(message), retry_after);
}

Status ReplyError(const Value& doc, const HttpResponse& response, double wall_now) {
  const Value* error = wire::Member(doc, "error");
  bool typed = wire::StringOr(wire::Member(doc, "type")) == "error";
  if ((error == nullptr || error->IsNull() || error->IsFalse()) && !typed) return Status::Ok();
  static const Value kNone;
  const Value& e = error != nullptr ? *error : kNone;
  int code = EmbeddedCode(e, "code");
  if (code == 0) code = EmbeddedCode(e, "status");
  std::string type = wire::StringOr(wire::Member(e, "type"));
  ErrorKind kind = EmbeddedKind(code, type);
  std::string message = "HTTP " + std::to_string(response.status) + " with an error in the body";
  if (code != 0) {
    message += " (code " + std::to_string(code) + ")";
  } else if (!type.empty()) {
    message += " (" + Excerpt(type) + ")";
  }
  std::string text = ErrorMessage(e);
  message += ": " + (text.empty() ? std::string("no message") : Excerpt(text));
  if (kind != ErrorKind::kRateLimited) return Status::Error(kind, std::move(message));
  double retry_after = response.RetryAfter(wall_now);
  if (retry_after > kMaxRetryAfter) retry_after = kMaxRetryAfter;
  return Status::Error(kind, std::move(message), retry_after);
}

std::string Excerpt(std::string_view raw) {
  std::string text = ReplaceInvalidUtf8(raw);
  size_t end = text.size();
  bool cut = end > kExcerptBytes;
  if (cut) {
    end = kExcerptBytes;  // not splitting a UTF-8 sequence
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
