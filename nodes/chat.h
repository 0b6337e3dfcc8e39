#pragma once
// The provider-neutral shape of one chat-completion call: what an agent node
// or keel.llm asks for (ChatRequest) and what comes back (ChatResponse).
//
// Messages are kept in the OpenAI Chat Completions shape, a JSON array of
// {"role": "system"|"user"|"assistant"|"tool", "content": ...,
//  "tool_calls": [{"id","type":"function","function":{"name","arguments"}}],
//  "tool_call_id": ...}; providers with another wire format (Anthropic)
// translate at the edge. Plain values, used by one thread at a time.

#include <optional>
#include <string>
#include <vector>

#include "engine/json_text.h"
#include "engine/usage.h"

namespace keel {

// A tool the model may call: name, description, JSON-schema parameters.
struct ToolSpec {
  std::string name;
  std::string description;
  std::string parameters_json = R"({"type":"object","properties":{}})";
};

enum class OutputMode { kText, kJson, kSchema };

struct ChatRequest {
  std::string model;                      // empty: the provider's default model
  std::string system;                     // empty: none
  std::string messages_json = "[]";       // OpenAI-shaped message array (no system message)
  std::optional<double> temperature;
  std::optional<int> max_tokens;
  std::vector<ToolSpec> tools;
  OutputMode output = OutputMode::kText;
  std::string schema_json;                // the JSON schema when output is kSchema
};

struct ToolCall {
  std::string id;
  std::string name;
  std::string arguments_json = "{}";  // as the model sent it (may be invalid JSON)
};

struct ChatResponse {
  std::string text;                 // the assistant's text ("" when it only called tools)
  std::vector<ToolCall> tool_calls;
  Usage usage;                      // tokens; cost is left 0 (LlmCallRecord has it)
  std::string model;                // the model that answered, as the provider says
  std::string finish_reason;        // "stop", "tool_calls", "length", ...
  // The assistant message to append to the conversation, OpenAI-shaped.
  std::string message_json;
};

}  // namespace keel
