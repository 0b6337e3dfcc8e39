#pragma once
// AnthropicProvider: the Anthropic Messages wire format. Requests arrive
// OpenAI-shaped (nodes/chat.h) and are translated here; replies are turned
// back into the OpenAI shape. Stateless; any thread. Reached through
// ProviderFor("anthropic").

#include <string>

#include "nodes/provider.h"

namespace keel {

class AnthropicProvider final : public Provider {
 public:
  // POST {base_url}/messages with the key in x-api-key (when not empty).
  HttpRequest Build(const ProviderConfig& config, const ChatRequest& chat,
                    const std::string& api_key) const override;
  Result<ChatResponse> Parse(const HttpResponse& response, double wall_now) const override;
};

// The max_tokens sent when a request does not set one (the API requires it).
inline constexpr int kAnthropicDefaultMaxTokens = 1024;

}  // namespace keel
