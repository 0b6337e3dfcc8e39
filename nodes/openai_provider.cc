#include "nodes/openai_provider.h"

#include <algorithm>
#include <cctype>
#include <optional>

#include "nodes/json_document.h"
#include "nodes/untrusted_json.h"
#include "nodes/wire_json.h"

namespace keel {
namespace {

using rapidjson::Value;

bool MentionsJson(const std::string& text) {
  static const std::string kJson = "json";
  auto it = std::search(text.begin(), text.end(), kJson.begin(), kJson.end(), [](char a, char b) {
    return std::tolower(static_cast<unsigned char>(a)) == b;
  });
  return it != text.end();
}

// The system prompt to send. OpenAI rejects response_format json_object
// unless the conversation mentions JSON, so a hint is added when it does not.
std::string SystemPrompt(const ChatRequest& chat) {
  if (chat.output != OutputMode::kJson || MentionsJson(chat.system) ||
      MentionsJson(chat.messages_json)) {
    return chat.system;
  }
  return chat.system.empty() ? "Answer in JSON." : chat.system + "\n\nAnswer in JSON.";
}

void WriteMessages(wire::Writer& w, const ChatRequest& chat) {
  w.StartArray();
  std::string system = SystemPrompt(chat);
  if (!system.empty()) {
    w.StartObject();
    w.Key("role");
    w.String("system");
    w.Key("content");
    wire::String(w, system);
    w.EndObject();
  }
  if (wire::JsonTypeOf(chat.messages_json) == rapidjson::kArrayType) {
    wire::ArrayItems(w, chat.messages_json);
  }
  w.EndArray();
}

void WriteTools(wire::Writer& w, const std::vector<ToolSpec>& tools) {
  w.Key("tools");
  w.StartArray();
  for (const ToolSpec& tool : tools) {
    w.StartObject();
    w.Key("type");
    w.String("function");
    w.Key("function");
    w.StartObject();
    w.Key("name");
    wire::String(w, tool.name);
    w.Key("description");
    wire::String(w, tool.description);
    w.Key("parameters");
    wire::Json(w, tool.parameters_json, R"({"type":"object","properties":{}})");
    w.EndObject();
    w.EndObject();
  }
  w.EndArray();
}

void WriteResponseFormat(wire::Writer& w, const ChatRequest& chat) {
  if (chat.output == OutputMode::kText) return;
  w.Key("response_format");
  w.StartObject();
  w.Key("type");
  if (chat.output == OutputMode::kJson) {
    w.String("json_object");
  } else {
    w.String("json_schema");
    w.Key("json_schema");
    w.StartObject();
    w.Key("name");
    w.String("output");
    w.Key("schema");
    wire::Json(w, chat.schema_json, "{}");
    w.EndObject();
  }
  w.EndObject();
}

std::string Body(const ProviderConfig& config, const ChatRequest& chat) {
  rapidjson::StringBuffer buf;
  wire::Writer w(buf);
  w.StartObject();
  w.Key("model");
  wire::String(w, chat.model.empty() ? config.model : chat.model);
  w.Key("messages");
  WriteMessages(w, chat);
  if (chat.temperature) {
    w.Key("temperature");
    w.Double(*chat.temperature);
  }
  if (chat.max_tokens) {
    w.Key("max_tokens");
    w.Int(*chat.max_tokens);
  }
  if (!chat.tools.empty()) WriteTools(w, chat.tools);
  WriteResponseFormat(w, chat);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

// A message's content: a string, or an array of {"type":"text","text"}
// parts joined; nullopt when it holds no text (null, missing, a number, only
// image parts).
std::optional<std::string> ContentText(const Value* content) {
  if (content == nullptr) return std::nullopt;
  if (content->IsString()) return wire::StringOr(content);
  if (!content->IsArray()) return std::nullopt;
  std::optional<std::string> text;
  for (const Value& part : content->GetArray()) {
    const Value* part_text = wire::Member(part, "text");
    if (part_text != nullptr && part_text->IsString())
      text = text.value_or("") + wire::StringOr(part_text);
  }
  return text;
}

std::vector<ToolCall> ToolCalls(const Value* calls) {
  std::vector<ToolCall> out;
  if (calls == nullptr || !calls->IsArray()) return out;
  for (const Value& call : calls->GetArray()) {
    ToolCall tc;
    tc.id = wire::StringOr(wire::Member(call, "id"));
    const Value* function = wire::Member(call, "function");
    if (function != nullptr) {
      tc.name = wire::StringOr(wire::Member(*function, "name"));
      const Value* args = wire::Member(*function, "arguments");
      if (args != nullptr && args->IsString()) {
        tc.arguments_json = wire::StringOr(args);
      } else if (args != nullptr && args->IsObject()) {
        tc.arguments_json = wire::Serialize(*args);
      }
    }
    out.push_back(std::move(tc));
  }
  return out;
}

}  // namespace

HttpRequest OpenAIProvider::Build(const ProviderConfig& config, const ChatRequest& chat,
                                  const std::string& api_key) const {
  HttpRequest request;
  request.url = wire::JoinUrl(config.base_url, "/chat/completions");
  request.headers.emplace_back("Content-Type", "application/json");
  if (!api_key.empty()) request.headers.emplace_back("Authorization", "Bearer " + api_key);
  for (const auto& header : config.headers) request.headers.push_back(header);
  request.body = Body(config, chat);
  return request;
}

Result<ChatResponse> OpenAIProvider::Parse(const HttpResponse& response, double wall_now) const {
  if (Status failure = wire::NotSuccess(response, "openai", wall_now); !failure.ok()) {
    return failure;
  }
  JsonDocument doc;
  if (Status s = ParseUntrustedJson(response.body, &doc); !s.ok()) {
    return wire::Malformed(s.message());
  }
  const Value* choices = wire::Member(doc, "choices");
  if (choices == nullptr || !choices->IsArray() || choices->Empty()) {
    if (Status error = ReplyError(doc, response, wall_now); !error.ok()) return error;
    return wire::Malformed("no choices");
  }
  const Value& choice = (*choices)[0];
  const Value* message = wire::Member(choice, "message");
  if (message == nullptr || !message->IsObject()) {
    return wire::Malformed("choices[0] has no message");
  }

  ChatResponse out;
  out.finish_reason = wire::StringOr(wire::Member(choice, "finish_reason"));
  std::string refusal = wire::StringOr(wire::Member(*message, "refusal"));
  if (!refusal.empty()) {
    return Status::Error(ErrorKind::kPermanent, "the model refused: " + Excerpt(refusal));
  }
  if (out.finish_reason == "content_filter") {
    return Status::Error(ErrorKind::kPermanent,
                         "the reply was withheld by the content filter (finish_reason "
                         "content_filter)");
  }
  std::optional<std::string> text = ContentText(wire::Member(*message, "content"));
  out.tool_calls = ToolCalls(wire::Member(*message, "tool_calls"));
  if (!text && out.tool_calls.empty()) {
    return Status::Error(ErrorKind::kTransient, "reply has no text content");
  }
  out.text = text.value_or("");
  out.model = wire::StringOr(wire::Member(doc, "model"));
  if (const Value* usage = wire::Member(doc, "usage")) {
    out.usage.prompt_tokens = wire::TokenCount(wire::Member(*usage, "prompt_tokens"));
    out.usage.completion_tokens = wire::TokenCount(wire::Member(*usage, "completion_tokens"));
  }
  out.message_json = OpenAIAssistantMessage(out.text, out.tool_calls);
  return out;
}

std::string OpenAIAssistantMessage(const std::string& text, const std::vector<ToolCall>& calls) {
  rapidjson::StringBuffer buf;
  wire::Writer w(buf);
  w.StartObject();
  w.Key("role");
  w.String("assistant");
  w.Key("content");
  if (text.empty() && !calls.empty()) {
    w.Null();
  } else {
    wire::String(w, text);
  }
  if (!calls.empty()) {
    w.Key("tool_calls");
    w.StartArray();
    for (const ToolCall& call : calls) {
      w.StartObject();
      w.Key("id");
      wire::String(w, call.id);
      w.Key("type");
      w.String("function");
      w.Key("function");
      w.StartObject();
      w.Key("name");
      wire::String(w, call.name);
      w.Key("arguments");
      wire::String(w, call.arguments_json);
      w.EndObject();
      w.EndObject();
    }
    w.EndArray();
  }
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace keel
