#pragma once
// Provider: one LLM wire format (OpenAI Chat Completions, Anthropic
// Messages): turns a ChatRequest into an HttpRequest and an HttpResponse back
// into a ChatResponse or a failure of the right kind. Stateless and
// thread-safe; shared by every call to providers of its kind.
//
// Failure kinds (see DESIGN §4): 429 -> kRateLimited with Retry-After;
// 408, 409, 425, 5xx (and Anthropic's 529) -> kTransient; 400, 401, 403, 404, 422
// and other 4xx -> kPermanent; a body that is not the expected JSON ->
// kTransient, and so is a 2xx reply carrying an error object, unless its
// code or type says otherwise (see ReplyError). Transport failures keep their
// kind. Messages quote at most a short excerpt of the server's body, made
// valid UTF-8, and never contain the API key.
//
// Token counts are read with wire::TokenCount: negative or unreadable counts
// are 0 and counts above kMaxTokenCount are kMaxTokenCount.

#include <rapidjson/document.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "engine/status.h"
#include "nodes/chat.h"
#include "nodes/http_loop.h"
#include "nodes/provider_config.h"

namespace keel {

class Provider {
 public:
  virtual ~Provider() = default;
  // The request for `chat` to `config`; `api_key` may be empty (no auth header).
  // Never fails: `chat.messages_json` must be a JSON array and the tools'
  // parameters and the schema JSON objects (LlmClient checks before).
  virtual HttpRequest Build(const ProviderConfig& config, const ChatRequest& chat,
                            const std::string& api_key) const = 0;
  // The reply, or the failure `response` means. `wall_now` reads Retry-After dates.
  virtual Result<ChatResponse> Parse(const HttpResponse& response, double wall_now) const = 0;
};

// The most tokens one count of one reply may claim (2^40, about 10^12): a
// larger or absurd count is taken as this, which trips any token budget and
// still leaves room for millions of such calls in a 64-bit sum.
inline constexpr int64_t kMaxTokenCount = int64_t{1} << 40;

// A Retry-After longer than this (seconds) is cut to it, and the failure's
// message says so.
inline constexpr double kMaxRetryAfter = 3600;

// The wire format of `kind` ("openai", "anthropic"); null for others.
const Provider* ProviderFor(const std::string& kind);

// The failure an HTTP response with a non-2xx status means (see above).
// `provider` names the provider in the message.
Status HttpStatusFailure(const HttpResponse& response, const std::string& provider,
                         double wall_now);

// The failure a 2xx reply `doc` means when it carries an error instead of
// an answer: {"error": {...}} or {"error": "..."} (OpenAI-compatible
// servers, OpenRouter, LM Studio) or {"type": "error", "error": {...}}
// (Anthropic). The message quotes the server's; an embedded code or status
// 429, or type rate_limit_error, is kRateLimited (with the response's
// Retry-After); other codes map like HTTP statuses; a type naming a client
// error (invalid_request_error, authentication_error, permission_error,
// not_found_error) is kPermanent; anything else is kTransient. Ok when `doc`
// carries no error.
Status ReplyError(const rapidjson::Value& doc, const HttpResponse& response, double wall_now);

// At most 200 bytes of server text for a message: invalid UTF-8 replaced by
// U+FFFD, control characters escaped so it stays on one line, "..." when cut.
std::string Excerpt(std::string_view text);

// `text` with every occurrence of `secret` (when not empty) replaced by "[redacted]".
std::string Redact(std::string text, const std::string& secret);

}  // namespace keel
