#pragma once
// OpenAIProvider: the OpenAI Chat Completions wire format, also spoken by
// vLLM, the llama.cpp server and Ollama's /v1 endpoint. Stateless; any
// thread. Reached through ProviderFor("openai").

#include <string>
#include <vector>

#include "nodes/provider.h"

namespace keel {

class OpenAIProvider final : public Provider {
 public:
  // POST {base_url}/chat/completions with a Bearer key (when not empty).
  HttpRequest Build(const ProviderConfig& config, const ChatRequest& chat,
                    const std::string& api_key) const override;
  Result<ChatResponse> Parse(const HttpResponse& response, double wall_now) const override;
};

// The assistant message {"role":"assistant","content":...,"tool_calls":[...]}
// holding `text` (null when empty and there are tool calls) and `calls`.
std::string OpenAIAssistantMessage(const std::string& text, const std::vector<ToolCall>& calls);

}  // namespace keel
