// Reading a chat request for MockResponder (see mock_request.h): the
// messages, the system prompt, the tools and the output format of the
// OpenAI and Anthropic dialects.

#include "nodes/mock_request.h"

#include <rapidjson/document.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nodes/json_document.h"
#include "nodes/wire_json.h"

namespace keel::mock_detail {
namespace {

using rapidjson::Value;

std::string Str(const Value& v, const char* key) { return wire::StringOr(wire::Member(v, key)); }

const Value* Member(const Value& v, const char* key) { return wire::Member(v, key); }

std::string ToJson(const Value& v) { return wire::Serialize(v); }

// The text of a message content: a string, or the text parts (OpenAI) or
// text blocks (Anthropic) of an array, one per line.
std::string ContentText(const Value* content) {
  if (content == nullptr) return "";
  if (content->IsString()) return std::string(content->GetString(), content->GetStringLength());
  std::string text;
  if (!content->IsArray()) return text;
  for (const Value& part : content->GetArray()) {
    if (Str(part, "type") != "text") continue;
    if (!text.empty()) text += "\n";
    text += Str(part, "text");
  }
  return text;
}

bool HasText(const Value* content) {
  if (content == nullptr) return false;
  if (content->IsString()) return true;
  if (!content->IsArray()) return false;
  for (const Value& part : content->GetArray()) {
    if (Str(part, "type") == "text") return true;
  }
  return false;
}

void ReadTools(const Value& req, MockDialect dialect, Conversation* c) {
  const Value* tools = Member(req, "tools");
  if (tools != nullptr && tools->IsArray()) {
    for (const Value& t : tools->GetArray()) {
      const Value* fn = dialect == MockDialect::kOpenAI ? Member(t, "function") : &t;
      if (fn == nullptr || Str(*fn, "name").empty()) continue;
      c->tools.push_back(
          {Str(*fn, "name"),
           Member(*fn, dialect == MockDialect::kOpenAI ? "parameters" : "input_schema")});
    }
  }
  const Value* choice = Member(req, "tool_choice");
  if (choice == nullptr) return;
  if (choice->IsString()) {
    c->tools_disabled = std::string(choice->GetString()) == "none";
  } else if (dialect == MockDialect::kOpenAI) {
    if (const Value* fn = Member(*choice, "function")) c->forced_tool = Str(*fn, "name");
  } else {
    c->tools_disabled = Str(*choice, "type") == "none";
    if (Str(*choice, "type") == "tool") c->forced_tool = Str(*choice, "name");
  }
}

void ReadOutput(const Value& req, MockDialect dialect, Conversation* c) {
  if (dialect == MockDialect::kAnthropic) {
    if (c->system.find("JSON") != std::string::npos) c->output = Output::kJson;
    // keel's Anthropic provider writes "... match this JSON schema: {...}".
    const std::string marker = "JSON schema: ";
    size_t at = c->system.find(marker);
    if (at == std::string::npos) return;
    auto schema = std::make_shared<JsonDocument>();
    schema->Parse<rapidjson::kParseStopWhenDoneFlag>(c->system.c_str() + at + marker.size());
    if (!schema->HasParseError() && schema->IsObject()) {
      c->system_schema = schema;
      c->schema = schema.get();
      c->output = Output::kSchema;
    }
    return;
  }
  const Value* format = Member(req, "response_format");
  if (format == nullptr) return;
  std::string type = Str(*format, "type");
  if (type == "json_object") c->output = Output::kJson;
  if (type != "json_schema") return;
  c->output = Output::kJson;
  const Value* spec = Member(*format, "json_schema");
  const Value* schema = spec ? Member(*spec, "schema") : nullptr;
  if (schema != nullptr && schema->IsObject()) {
    c->output = Output::kSchema;
    c->schema = schema;
  }
}
}  // namespace

std::optional<BadRequest> ReadConversation(const Value& req, MockDialect dialect, Conversation* c) {
  c->model = Str(req, "model");
  const Value* messages = Member(req, "messages");
  if (messages == nullptr || !messages->IsArray()) {
    return BadRequest{"'messages' is missing or not an array"};
  }
  if (messages->Empty()) return BadRequest{"'messages' is empty"};
  if (dialect == MockDialect::kAnthropic) c->system = ContentText(Member(req, "system"));

  size_t last_user = 0;
  for (size_t i = 0; i < messages->Size(); ++i) {
    const Value& m = (*messages)[i];
    if (!m.IsObject()) return BadRequest{"messages[" + std::to_string(i) + "] is not an object"};
    const std::string role = Str(m, "role");
    const Value* content = Member(m, "content");
    if (dialect == MockDialect::kOpenAI && (role == "system" || role == "developer")) {
      if (!c->system.empty()) c->system += "\n";
      c->system += ContentText(content);
    }
    if (role == "user" && HasText(content)) {
      last_user = i;
      c->user = ContentText(content);
    }
  }

  c->transcript = c->system;
  for (size_t i = 0; i < messages->Size(); ++i) {
    const Value& m = (*messages)[i];
    const std::string role = Str(m, "role");
    const Value* content = Member(m, "content");
    c->transcript += "\n" + role + ": " + ContentText(content);
    if (const Value* calls = Member(m, "tool_calls"); calls && calls->IsArray()) {
      c->transcript += ToJson(*calls);
    }
    std::vector<std::string> results;
    if (dialect == MockDialect::kOpenAI && role == "tool") results.push_back(ContentText(content));
    if (content != nullptr && content->IsArray()) {
      for (const Value& block : content->GetArray()) {
        const std::string type = Str(block, "type");
        if (type == "tool_result") results.push_back(ContentText(Member(block, "content")));
        if (type == "tool_use") c->transcript += ToJson(block);
      }
    }
    for (const std::string& r : results) {
      if (role != "tool") c->transcript += " " + r;
      if (i >= last_user) c->tool_results.push_back(r);
    }
  }
  ReadTools(req, dialect, c);
  ReadOutput(req, dialect, c);
  return std::nullopt;
}

}  // namespace keel::mock_detail
