#include "nodes/anthropic_provider.h"

#include <algorithm>
#include <string_view>
#include <utility>
#include <vector>

#include "nodes/json_document.h"
#include "nodes/openai_provider.h"
#include "nodes/untrusted_json.h"
#include "nodes/wire_json.h"

namespace keel {
namespace {

using rapidjson::Value;

// Translates an OpenAI-shaped message array into Anthropic messages.
// Consecutive messages of one role (e.g. several tool results) become one
// message, as the API expects; system messages join the system prompt.
// A value used on one thread.
class MessageTranslator {
 public:
  MessageTranslator() : alloc_(out_.GetAllocator()) { out_.SetArray(); }

  void Add(const Value& message) {
    std::string role = wire::StringOr(wire::Member(message, "role"));
    const Value* content = wire::Member(message, "content");
    if (role == "system") {
      AppendSystem(PlainText(content));
    } else if (role == "tool") {
      AddToolResult(message, content);
    } else if (role == "assistant") {
      AddTextBlocks("assistant", content);
      AddToolUses(wire::Member(message, "tool_calls"));
    } else {
      AddTextBlocks("user", content);
    }
  }

  const rapidjson::Document& messages() const { return out_; }
  const std::string& system() const { return system_; }

 private:
  // Text of a content that is a string or an array of text parts.
  static std::string PlainText(const Value* content) {
    if (content == nullptr) return "";
    if (content->IsString()) return wire::StringOr(content);
    std::string text;
    if (content->IsArray()) {
      for (const Value& part : content->GetArray()) {
        text += wire::StringOr(wire::Member(part, "text"));
      }
    }
    return text;
  }

  void AppendSystem(const std::string& text) {
    if (text.empty()) return;
    system_ += system_.empty() ? text : "\n\n" + text;
  }

  void AddTextBlocks(const char* role, const Value* content) {
    if (content != nullptr && content->IsArray()) {
      for (const Value& part : content->GetArray()) {
        AddText(role, wire::StringOr(wire::Member(part, "text")));
      }
    } else {
      AddText(role, PlainText(content));
    }
  }

  // Empty text blocks are rejected by the API, so they are left out.
  void AddText(const char* role, const std::string& text) {
    if (text.empty()) return;
    Value block(rapidjson::kObjectType);
    block.AddMember("type", "text", alloc_);
    block.AddMember(
        "text", Value(text.c_str(), static_cast<rapidjson::SizeType>(text.size()), alloc_), alloc_);
    Append(role, std::move(block));
  }

  void AddToolUses(const Value* calls) {
    if (calls == nullptr || !calls->IsArray()) return;
    for (const Value& call : calls->GetArray()) {
      const Value* function = wire::Member(call, "function");
      Value block(rapidjson::kObjectType);
      block.AddMember("type", "tool_use", alloc_);
      block.AddMember("id", Str(wire::StringOr(wire::Member(call, "id"))), alloc_);
      block.AddMember("name", Str(function ? wire::StringOr(wire::Member(*function, "name")) : ""),
                      alloc_);
      block.AddMember("input", Input(function ? wire::Member(*function, "arguments") : nullptr),
                      alloc_);
      Append("assistant", std::move(block));
    }
  }

  // The parsed arguments of a tool call; {} when they are not a JSON object.
  Value Input(const Value* arguments) {
    Value input(rapidjson::kObjectType);
    if (arguments != nullptr && arguments->IsObject()) {
      input.CopyFrom(*arguments, alloc_);
    } else if (arguments != nullptr && arguments->IsString()) {
      JsonDocument parsed;
      std::string_view text(arguments->GetString(), arguments->GetStringLength());
      if (ParseUntrustedJson(text, &parsed).ok() && parsed.IsObject()) {
        input.CopyFrom(parsed, alloc_);
      }
    }
    return input;
  }

  void AddToolResult(const Value& message, const Value* content) {
    Value block(rapidjson::kObjectType);
    block.AddMember("type", "tool_result", alloc_);
    block.AddMember("tool_use_id", Str(wire::StringOr(wire::Member(message, "tool_call_id"))),
                    alloc_);
    block.AddMember("content", Str(PlainText(content)), alloc_);
    Append("user", std::move(block));
  }

  void Append(const char* role, Value block) {
    if (out_.Empty() || out_[out_.Size() - 1]["role"] != role) {
      Value message(rapidjson::kObjectType);
      message.AddMember("role", Value(role, alloc_), alloc_);
      message.AddMember("content", Value(rapidjson::kArrayType), alloc_);
      out_.PushBack(std::move(message), alloc_);
    }
    out_[out_.Size() - 1]["content"].PushBack(std::move(block), alloc_);
  }

  Value Str(const std::string& s) {
    return Value(s.c_str(), static_cast<rapidjson::SizeType>(s.size()), alloc_);
  }

  JsonDocument out_;  // the array of translated messages
  rapidjson::Document::AllocatorType& alloc_;
  std::string system_;  // system messages found in the conversation
};

// Anthropic has no response_format: JSON output is asked for in the prompt.
std::string JsonInstruction(const ChatRequest& chat) {
  if (chat.output == OutputMode::kText) return "";
  std::string text = "Answer with one JSON value only, without any other text.";
  if (chat.output == OutputMode::kSchema) {
    text += " The value must match this JSON schema: " + chat.schema_json;
  }
  return text;
}

std::string SystemPrompt(const ChatRequest& chat, const std::string& from_messages) {
  std::string system;
  for (const std::string& part : {chat.system, from_messages, JsonInstruction(chat)}) {
    if (part.empty()) continue;
    system += system.empty() ? part : "\n\n" + part;
  }
  return system;
}

void WriteTools(wire::Writer& w, const std::vector<ToolSpec>& tools) {
  w.Key("tools");
  w.StartArray();
  for (const ToolSpec& tool : tools) {
    w.StartObject();
    w.Key("name");
    wire::String(w, tool.name);
    w.Key("description");
    wire::String(w, tool.description);
    w.Key("input_schema");
    wire::Json(w, tool.parameters_json, R"({"type":"object","properties":{}})");
    w.EndObject();
  }
  w.EndArray();
}

std::string Body(const ProviderConfig& config, const ChatRequest& chat) {
  MessageTranslator translator;
  JsonDocument messages;
  messages.Parse(chat.messages_json.c_str(), chat.messages_json.size());
  if (!messages.HasParseError() && messages.IsArray()) {
    for (const Value& m : messages.GetArray()) translator.Add(m);
  }
  std::string system = SystemPrompt(chat, translator.system());

  rapidjson::StringBuffer buf;
  wire::Writer w(buf);
  w.StartObject();
  w.Key("model");
  wire::String(w, chat.model.empty() ? config.model : chat.model);
  w.Key("max_tokens");
  w.Int(chat.max_tokens.value_or(kAnthropicDefaultMaxTokens));
  if (!system.empty()) {
    w.Key("system");
    wire::String(w, system);
  }
  if (chat.temperature) {
    w.Key("temperature");
    w.Double(*chat.temperature);
  }
  w.Key("messages");
  translator.messages().Accept(w);
  if (!chat.tools.empty()) WriteTools(w, chat.tools);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::string FinishReason(const std::string& stop_reason) {
  if (stop_reason == "end_turn" || stop_reason == "stop_sequence") return "stop";
  if (stop_reason == "tool_use") return "tool_calls";
  if (stop_reason == "max_tokens") return "length";
  return stop_reason;
}

}  // namespace

HttpRequest AnthropicProvider::Build(const ProviderConfig& config, const ChatRequest& chat,
                                     const std::string& api_key) const {
  HttpRequest request;
  request.url = wire::JoinUrl(config.base_url, "/messages");
  request.headers.emplace_back("content-type", "application/json");
  request.headers.emplace_back("anthropic-version", "2023-06-01");
  if (!api_key.empty()) request.headers.emplace_back("x-api-key", api_key);
  for (const auto& header : config.headers) request.headers.push_back(header);
  request.body = Body(config, chat);
  return request;
}

Result<ChatResponse> AnthropicProvider::Parse(const HttpResponse& response, double wall_now) const {
  if (Status failure = wire::NotSuccess(response, "anthropic", wall_now); !failure.ok()) {
    return failure;
  }
  JsonDocument doc;
  if (Status s = ParseUntrustedJson(response.body, &doc); !s.ok()) {
    return wire::Malformed(s.message());
  }
  if (Status error = ReplyError(doc, response, wall_now); !error.ok()) return error;
  const Value* content = wire::Member(doc, "content");
  if (content == nullptr || !content->IsArray()) return wire::Malformed("no content");

  ChatResponse out;
  bool has_text = false;
  for (const Value& block : content->GetArray()) {
    std::string type = wire::StringOr(wire::Member(block, "type"));
    const Value* text = wire::Member(block, "text");
    if (type == "text" && text != nullptr && text->IsString()) {
      has_text = true;
      out.text += wire::StringOr(text);
    } else if (type == "tool_use") {
      ToolCall call;
      call.id = wire::StringOr(wire::Member(block, "id"));
      call.name = wire::StringOr(wire::Member(block, "name"));
      const Value* input = wire::Member(block, "input");
      if (input != nullptr) call.arguments_json = wire::Serialize(*input);
      out.tool_calls.push_back(std::move(call));
    }
  }
  std::string stop_reason = wire::StringOr(wire::Member(doc, "stop_reason"));
  if (stop_reason == "refusal") {
    std::string message = "the model refused (stop_reason refusal)";
    if (!out.text.empty()) message += ": " + Excerpt(out.text);
    return Status::Error(ErrorKind::kPermanent, std::move(message));
  }
  if (!has_text && out.tool_calls.empty()) {
    return Status::Error(ErrorKind::kTransient, "reply has no text content");
  }
  out.finish_reason = FinishReason(stop_reason);
  out.model = wire::StringOr(wire::Member(doc, "model"));
  if (const Value* usage = wire::Member(doc, "usage")) {
    // input_tokens leaves out the prompt tokens written to or read from the
    // prompt cache; they are billed too.
    int64_t prompt = 0;
    for (const char* field :
         {"input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"}) {
      prompt += wire::TokenCount(wire::Member(*usage, field));
    }
    out.usage.prompt_tokens = std::min(prompt, kMaxTokenCount);
    out.usage.completion_tokens = wire::TokenCount(wire::Member(*usage, "output_tokens"));
  }
  out.message_json = OpenAIAssistantMessage(out.text, out.tool_calls);
  return out;
}

}  // namespace keel
