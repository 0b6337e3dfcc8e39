#pragma once
// Provider: one LLM wire format (OpenAI Chat Completions, Anthropic
// Messages): turns a ChatRequest into an HttpRequest and an HttpResponse back
// into a ChatResponse or a failure of the right kind. Stateless and
// thread-safe; shared by every call to providers of its kind.
//
// Failure kinds (see DESIGN §4): 429 -> kRateLimited with Retry-After;
// 408, 409, 425, 5xx (and Anthropic's 529) -> kTransient; 400, 401, 403, 404, 422
// and other 4xx -> kPermanent; a body that is not the expected JSON ->
// kTransient. Transport failures keep their kind. Messages quote at most a
// short excerpt of the server's body and never contain the API key.

#include <memory>
#include <string>

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

// The wire format of `kind` ("openai", "anthropic"); null for others.
const Provider* ProviderFor(const std::string& kind);

// The failure an HTTP response with a non-2xx status means (see above).
// `provider` names the provider in the message.
Status HttpStatusFailure(const HttpResponse& response, const std::string& provider,
                         double wall_now);

// `text` with every occurrence of `secret` (when not empty) replaced by "[redacted]".
std::string Redact(std::string text, const std::string& secret);

}  // namespace keel
