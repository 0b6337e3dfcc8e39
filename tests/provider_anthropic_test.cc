// Anthropic providers: building requests and parsing replies.

#include "nodes/provider.h"

#include <doctest/doctest.h>

#include <string>

#include "tests/fakes/provider_fixture.h"

namespace keel {
namespace {

using testing::Config;
using testing::Doc;
using testing::HeaderOf;
using testing::kKey;
using testing::kWallNow;
using testing::Reply;
using testing::ToolConversation;

TEST_CASE("Anthropic Build: URL, headers and the key") {
  const Provider* anthropic = ProviderFor("anthropic");
  ChatRequest chat;
  chat.messages_json = R"([{"role":"user","content":"hi"}])";
  HttpRequest request =
      anthropic->Build(Config("anthropic", "https://api.example/v1/"), chat, kKey);
  CHECK(request.url == "https://api.example/v1/messages");
  CHECK(HeaderOf(request, "x-api-key") == kKey);
  CHECK(HeaderOf(request, "anthropic-version") == "2023-06-01");
  CHECK(HeaderOf(request, "content-type") == "application/json");
  CHECK(HeaderOf(request, "Authorization") == "<absent>");
  CHECK(HeaderOf(request, "X-Extra") == "yes");
  CHECK(request.body.find(kKey) == std::string::npos);

  HttpRequest keyless = anthropic->Build(Config("anthropic", "http://h"), chat, "");
  CHECK(HeaderOf(keyless, "x-api-key") == "<absent>");

  Doc body(request.body);
  CHECK(body.Str("/model") == "default-model");
  CHECK(body.Num("/max_tokens") == 1024);
  CHECK_FALSE(body.Has("/system"));
  CHECK_FALSE(body.Has("/temperature"));
  CHECK_FALSE(body.Has("/tools"));
  CHECK(body.Dump("/messages") == R"([{"role":"user","content":[{"type":"text","text":"hi"}]}])");
}

TEST_CASE("Anthropic Build: system, options, tools and tool turns") {
  ChatRequest chat = ToolConversation();
  chat.temperature = 0.5;
  chat.max_tokens = 300;
  Doc body(ProviderFor("anthropic")->Build(Config("anthropic", "http://h"), chat, "").body);
  CHECK(body.Str("/system") == "be brief");
  CHECK(body.Num("/temperature") == doctest::Approx(0.5));
  CHECK(body.Num("/max_tokens") == 300);
  CHECK(body.Str("/tools/0/name") == "weather");
  CHECK(body.Str("/tools/0/description") == "Weather for a city");
  CHECK(body.Str("/tools/0/input_schema/properties/city/type") == "string");

  REQUIRE(body.Size("/messages") == 3);
  CHECK(body.Str("/messages/0/role") == "user");
  CHECK(body.Str("/messages/0/content/0/text") == "weather in Paris and Rome?");

  CHECK(body.Str("/messages/1/role") == "assistant");
  CHECK(body.Size("/messages/1/content") == 3);
  CHECK(body.Dump("/messages/1/content/0") == R"({"type":"text","text":"Checking."})");
  CHECK(body.Dump("/messages/1/content/1") ==
        R"({"type":"tool_use","id":"c1","name":"weather","input":{"city":"Paris"}})");
  CHECK(body.Dump("/messages/1/content/2/input") == "{}");

  CHECK(body.Str("/messages/2/role") == "user");
  CHECK(body.Dump("/messages/2/content") ==
        R"([{"type":"tool_result","tool_use_id":"c1","content":"sunny"},)"
        R"({"type":"tool_result","tool_use_id":"c2","content":"rain"}])");
}

TEST_CASE("Anthropic Build: an assistant turn of tool calls only has no text block") {
  ChatRequest chat;
  chat.messages_json = R"([{"role":"user","content":"go"},
    {"role":"assistant","content":null,"tool_calls":[
      {"id":"t","type":"function","function":{"name":"f","arguments":"{}"}}]}])";
  Doc body(ProviderFor("anthropic")->Build(Config("anthropic", "http://h"), chat, "").body);
  CHECK(body.Size("/messages/1/content") == 1);
  CHECK(body.Str("/messages/1/content/0/type") == "tool_use");
}

TEST_CASE("Anthropic Build: JSON output is asked for in the system prompt") {
  ChatRequest chat;
  chat.messages_json = R"([{"role":"user","content":"hi"}])";
  chat.system = "be brief";
  chat.output = OutputMode::kJson;
  Doc json_body(ProviderFor("anthropic")->Build(Config("anthropic", "http://h"), chat, "").body);
  CHECK(json_body.Str("/system").find("be brief") == 0);
  CHECK(json_body.Str("/system").find("JSON value only") != std::string::npos);
  CHECK_FALSE(json_body.Has("/response_format"));

  chat.output = OutputMode::kSchema;
  chat.schema_json = R"({"type":"object","required":["answer"]})";
  Doc schema_body(ProviderFor("anthropic")->Build(Config("anthropic", "http://h"), chat, "").body);
  CHECK(schema_body.Str("/system").find(chat.schema_json) != std::string::npos);
}

TEST_CASE("Anthropic Parse: text blocks, tool use, usage, message_json") {
  Result<ChatResponse> r = ProviderFor("anthropic")
                               ->Parse(Reply(200, R"({
    "id":"msg_1","type":"message","role":"assistant","model":"claude-test",
    "content":[{"type":"text","text":"Let me "},{"type":"text","text":"check."},
      {"type":"tool_use","id":"toolu_1","name":"weather","input":{"city":"Rome"}}],
    "stop_reason":"tool_use","usage":{"input_tokens":40,"output_tokens":9}})"),
                                       kWallNow);
  REQUIRE(r.ok());
  CHECK(r->text == "Let me check.");
  CHECK(r->model == "claude-test");
  CHECK(r->finish_reason == "tool_calls");
  CHECK(r->usage.prompt_tokens == 40);
  CHECK(r->usage.completion_tokens == 9);
  REQUIRE(r->tool_calls.size() == 1);
  CHECK(r->tool_calls[0].id == "toolu_1");
  CHECK(r->tool_calls[0].name == "weather");
  CHECK(r->tool_calls[0].arguments_json == R"({"city":"Rome"})");
  Doc message(r->message_json);
  CHECK(message.Str("/role") == "assistant");
  CHECK(message.Str("/content") == "Let me check.");
  CHECK(message.Str("/tool_calls/0/function/name") == "weather");
  CHECK(message.Str("/tool_calls/0/function/arguments") == R"({"city":"Rome"})");
}

TEST_CASE("Anthropic Parse: stop reasons") {
  auto finish = [](const char* stop_reason) {
    std::string body = std::string(R"({"content":[{"type":"text","text":"x"}],"stop_reason":")") +
                       stop_reason + "\"}";
    Result<ChatResponse> r = ProviderFor("anthropic")->Parse(Reply(200, body), kWallNow);
    REQUIRE(r.ok());
    return r->finish_reason;
  };
  CHECK(finish("end_turn") == "stop");
  CHECK(finish("tool_use") == "tool_calls");
  CHECK(finish("max_tokens") == "length");
}

TEST_CASE("Anthropic Parse: malformed bodies are transient") {
  const Provider* anthropic = ProviderFor("anthropic");
  Result<ChatResponse> bad = anthropic->Parse(Reply(200, "<html>"), kWallNow);
  CHECK(bad.status().kind() == ErrorKind::kTransient);
  CHECK(bad.status().message().find("malformed reply: invalid JSON at offset 0: ") == 0);
  CHECK(anthropic->Parse(Reply(200, R"({"type":"message"})"), kWallNow).status().kind() ==
        ErrorKind::kTransient);
}

}  // namespace
}  // namespace keel
