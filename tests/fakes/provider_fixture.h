#pragma once
// What the provider tests (provider_openai_test, provider_anthropic_test,
// provider_http_test) share: a JSON reader for built bodies, replies, a
// provider config and a conversation with a tool round. Test thread only.

#include <doctest/doctest.h>
#include <rapidjson/document.h>
#include <rapidjson/pointer.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <string>

#include "nodes/provider.h"

namespace keel::testing {

inline constexpr double kWallNow = 1.7e9;
inline const char* const kKey = "sk-test-SECRET-0123456789";

// A parsed JSON text read through JSON pointers ("/messages/0/role").
class Doc {
 public:
  explicit Doc(const std::string& text) {
    doc_.Parse(text.c_str(), text.size());
    REQUIRE_MESSAGE(!doc_.HasParseError(), text);
  }
  bool Has(const char* pointer) const { return Get(pointer) != nullptr; }
  std::string Str(const char* pointer) const {
    const rapidjson::Value* v = Get(pointer);
    return v != nullptr && v->IsString() ? v->GetString() : "<not a string>";
  }
  double Num(const char* pointer) const {
    const rapidjson::Value* v = Get(pointer);
    return v != nullptr && v->IsNumber() ? v->GetDouble() : -999;
  }
  size_t Size(const char* pointer) const {
    const rapidjson::Value* v = Get(pointer);
    return v != nullptr && v->IsArray() ? v->Size() : 0;
  }
  std::string Dump(const char* pointer) const {
    const rapidjson::Value* v = Get(pointer);
    if (v == nullptr) return "<missing>";
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    v->Accept(w);
    return buf.GetString();
  }

 private:
  const rapidjson::Value* Get(const char* pointer) const {
    return rapidjson::Pointer(pointer).Get(doc_);
  }
  rapidjson::Document doc_;
};

inline std::string HeaderOf(const HttpRequest& request, const std::string& name) {
  for (const auto& [key, value] : request.headers) {
    if (key == name) return value;
  }
  return "<absent>";
}

inline HttpResponse Reply(int status, std::string body) {
  HttpResponse response;
  response.status = status;
  response.body = std::move(body);
  return response;
}

inline ProviderConfig Config(const std::string& kind, const std::string& base_url) {
  ProviderConfig config;
  config.name = "fast";
  config.kind = kind;
  config.base_url = base_url;
  config.model = "default-model";
  config.headers = {{"X-Extra", "yes"}};
  return config;
}

// A conversation with one tool round: user, assistant tool calls, two results.
inline ChatRequest ToolConversation() {
  ChatRequest chat;
  chat.system = "be brief";
  chat.messages_json = R"([
    {"role":"user","content":"weather in Paris and Rome?"},
    {"role":"assistant","content":"Checking.","tool_calls":[
      {"id":"c1","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Paris\"}"}},
      {"id":"c2","type":"function","function":{"name":"weather","arguments":"not json"}}]},
    {"role":"tool","tool_call_id":"c1","content":"sunny"},
    {"role":"tool","tool_call_id":"c2","content":"rain"}
  ])";
  chat.tools.push_back({"weather", "Weather for a city",
                        R"({"type":"object","properties":{"city":{"type":"string"}}})"});
  return chat;
}

}  // namespace keel::testing
