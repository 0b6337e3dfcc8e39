// OpenAI-style providers: building requests and parsing replies, and the
// parsing rules every provider shares (nesting, UTF-8, errors in a 200, token
// counts, refusals).

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

TEST_CASE("ProviderFor knows openai and anthropic only") {
  CHECK(ProviderFor("openai") != nullptr);
  CHECK(ProviderFor("anthropic") != nullptr);
  CHECK(ProviderFor("openai") != ProviderFor("anthropic"));
  CHECK(ProviderFor("mock") == nullptr);
  CHECK(ProviderFor("") == nullptr);
}

TEST_CASE("OpenAI Build: URL, headers and the key") {
  const Provider* openai = ProviderFor("openai");
  ChatRequest chat;
  chat.messages_json = R"([{"role":"user","content":"hi"}])";

  HttpRequest with_key = openai->Build(Config("openai", "http://h:1/v1/"), chat, kKey);
  CHECK(with_key.method == "POST");
  CHECK(with_key.url == "http://h:1/v1/chat/completions");
  CHECK(HeaderOf(with_key, "Content-Type") == "application/json");
  CHECK(HeaderOf(with_key, "Authorization") == std::string("Bearer ") + kKey);
  CHECK(HeaderOf(with_key, "X-Extra") == "yes");
  CHECK(with_key.body.find(kKey) == std::string::npos);

  HttpRequest without_key = openai->Build(Config("openai", "http://h:1/v1"), chat, "");
  CHECK(without_key.url == "http://h:1/v1/chat/completions");
  CHECK(HeaderOf(without_key, "Authorization") == "<absent>");
}

TEST_CASE("OpenAI Build: body fields") {
  const Provider* openai = ProviderFor("openai");
  ChatRequest chat = ToolConversation();

  SUBCASE("model, system first, messages, tools; no optional fields unset") {
    Doc body(openai->Build(Config("openai", "http://h"), chat, "").body);
    CHECK(body.Str("/model") == "default-model");
    CHECK(body.Size("/messages") == 5);
    CHECK(body.Str("/messages/0/role") == "system");
    CHECK(body.Str("/messages/0/content") == "be brief");
    CHECK(body.Str("/messages/1/content") == "weather in Paris and Rome?");
    CHECK(body.Str("/messages/2/tool_calls/0/function/arguments") == R"({"city":"Paris"})");
    CHECK(body.Str("/messages/4/tool_call_id") == "c2");
    CHECK(body.Str("/tools/0/type") == "function");
    CHECK(body.Str("/tools/0/function/name") == "weather");
    CHECK(body.Str("/tools/0/function/description") == "Weather for a city");
    CHECK(body.Str("/tools/0/function/parameters/properties/city/type") == "string");
    CHECK_FALSE(body.Has("/temperature"));
    CHECK_FALSE(body.Has("/max_tokens"));
    CHECK_FALSE(body.Has("/response_format"));
  }
  SUBCASE("model override, temperature, max_tokens") {
    chat.model = "other-model";
    chat.temperature = 0.25;
    chat.max_tokens = 77;
    Doc body(openai->Build(Config("openai", "http://h"), chat, "").body);
    CHECK(body.Str("/model") == "other-model");
    CHECK(body.Num("/temperature") == doctest::Approx(0.25));
    CHECK(body.Num("/max_tokens") == 77);
  }
  SUBCASE("no system message when none is set") {
    chat.system.clear();
    Doc body(openai->Build(Config("openai", "http://h"), chat, "").body);
    CHECK(body.Size("/messages") == 4);
    CHECK(body.Str("/messages/0/role") == "user");
  }
  SUBCASE("json output") {
    chat.output = OutputMode::kJson;
    chat.system = "Reply in JSON.";
    Doc body(openai->Build(Config("openai", "http://h"), chat, "").body);
    CHECK(body.Dump("/response_format") == R"({"type":"json_object"})");
    CHECK(body.Str("/messages/0/content") == "Reply in JSON.");
  }
  SUBCASE("json output without the word JSON gets a hint (OpenAI requires it)") {
    chat.output = OutputMode::kJson;
    chat.messages_json = R"([{"role":"user","content":"hi"}])";
    Doc body(openai->Build(Config("openai", "http://h"), chat, "").body);
    CHECK(body.Str("/messages/0/content").find("JSON") != std::string::npos);
  }
  SUBCASE("schema output") {
    chat.output = OutputMode::kSchema;
    chat.schema_json = R"({"type":"object","required":["a"]})";
    Doc body(openai->Build(Config("openai", "http://h"), chat, "").body);
    CHECK(body.Str("/response_format/type") == "json_schema");
    CHECK(body.Str("/response_format/json_schema/name") == "output");
    CHECK(body.Dump("/response_format/json_schema/schema") == chat.schema_json);
    CHECK(body.Str("/messages/0/content") == "be brief");
  }
}

TEST_CASE("OpenAI Parse: text, usage, model, finish reason") {
  Result<ChatResponse> r = ProviderFor("openai")->Parse(Reply(200, R"({
    "id":"x","model":"gpt-test","choices":[{"index":0,"finish_reason":"stop",
      "message":{"role":"assistant","content":"Hello there"}}],
    "usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}})"),
                                                        kWallNow);
  REQUIRE(r.ok());
  CHECK(r->text == "Hello there");
  CHECK(r->tool_calls.empty());
  CHECK(r->model == "gpt-test");
  CHECK(r->finish_reason == "stop");
  CHECK(r->usage.prompt_tokens == 12);
  CHECK(r->usage.completion_tokens == 3);
  CHECK(r->usage.cost == 0);
  Doc message(r->message_json);
  CHECK(message.Str("/role") == "assistant");
  CHECK(message.Str("/content") == "Hello there");
  CHECK_FALSE(message.Has("/tool_calls"));
}

TEST_CASE("OpenAI Parse: tool calls with null content, no usage") {
  Result<ChatResponse> r = ProviderFor("openai")->Parse(Reply(200, R"({
    "model":"m","choices":[{"finish_reason":"tool_calls","message":{"role":"assistant",
      "content":null,"tool_calls":[
        {"id":"call_1","type":"function","function":{"name":"add","arguments":"{\"a\":1}"}},
        {"id":"call_2","type":"function","function":{"name":"sub","arguments":"{oops"}}]}}]})"),
                                                        kWallNow);
  REQUIRE(r.ok());
  CHECK(r->text.empty());
  CHECK(r->finish_reason == "tool_calls");
  CHECK(r->usage.prompt_tokens == 0);
  CHECK(r->usage.completion_tokens == 0);
  REQUIRE(r->tool_calls.size() == 2);
  CHECK(r->tool_calls[0].id == "call_1");
  CHECK(r->tool_calls[0].name == "add");
  CHECK(r->tool_calls[0].arguments_json == R"({"a":1})");
  CHECK(r->tool_calls[1].arguments_json == "{oops");
  Doc message(r->message_json);
  CHECK(message.Dump("/content") == "null");
  CHECK(message.Str("/tool_calls/1/id") == "call_2");
  CHECK(message.Str("/tool_calls/1/type") == "function");
  CHECK(message.Str("/tool_calls/0/function/arguments") == R"({"a":1})");
}

TEST_CASE("OpenAI Parse: malformed 2xx bodies are transient") {
  const Provider* openai = ProviderFor("openai");
  Result<ChatResponse> not_json = openai->Parse(Reply(200, "{\"choices\": [tru"), kWallNow);
  CHECK(not_json.status().kind() == ErrorKind::kTransient);
  CHECK(not_json.status().message() == "malformed reply: invalid JSON at offset 16: Invalid value");

  Result<ChatResponse> no_choices = openai->Parse(Reply(200, R"({"choices":[]})"), kWallNow);
  CHECK(no_choices.status().kind() == ErrorKind::kTransient);
  CHECK(no_choices.status().message().find("no choices") != std::string::npos);

  CHECK(openai->Parse(Reply(200, "[]"), kWallNow).status().kind() == ErrorKind::kTransient);
  CHECK(openai->Parse(Reply(200, ""), kWallNow).status().kind() == ErrorKind::kTransient);
}

// A chat completion (OpenAI) carrying `extra` as an additional member.
std::string OpenAIReply(const std::string& message, const std::string& extra = "",
                        const std::string& finish_reason = "stop") {
  return R"({"model":"m",)" + extra + R"("choices":[{"index":0,"finish_reason":")" + finish_reason +
         R"(","message":)" + message + "}]}";
}

TEST_CASE("Parse: deeply nested replies fail transient, without recursion") {
  const std::string deep = std::string(150000, '[') + std::string(150000, ']');
  Result<ChatResponse> openai = ProviderFor("openai")->Parse(
      Reply(200, OpenAIReply(R"({"content":"hi"})", "\"deep\":" + deep + ",")), kWallNow);
  CHECK(openai.status().kind() == ErrorKind::kTransient);
  CHECK(openai.status().message() ==
        "malformed reply: invalid JSON at offset 219: nested deeper than 200 levels");
  Result<ChatResponse> anthropic =
      ProviderFor("anthropic")
          ->Parse(Reply(200, R"({"deep":)" + deep + R"(,"content":[{"type":"text","text":"x"}]})"),
                  kWallNow);
  CHECK(anthropic.status().kind() == ErrorKind::kTransient);
  CHECK(anthropic.status().message().find("nested deeper than 200 levels") != std::string::npos);
  // Error bodies too: the excerpt of the raw body stands in for the message.
  Status error = HttpStatusFailure(Reply(500, R"({"error":)" + deep + "}"), "fast", kWallNow);
  CHECK(error.kind() == ErrorKind::kTransient);
  CHECK(error.message().find("provider 'fast': HTTP 500: {\"error\":[[[") == 0);
}

TEST_CASE("Parse: a reply that is not valid UTF-8 fails transient") {
  Result<ChatResponse> openai = ProviderFor("openai")->Parse(
      Reply(200, OpenAIReply("{\"content\":\"caf\xE9 \xFF\xFE\"}")), kWallNow);
  CHECK(openai.status().kind() == ErrorKind::kTransient);
  CHECK(openai.status().message().find("Invalid encoding in string") != std::string::npos);
  Result<ChatResponse> anthropic =
      ProviderFor("anthropic")
          ->Parse(Reply(200, "{\"content\":[{\"type\":\"text\",\"text\":\"caf\xE9\"}]}"), kWallNow);
  CHECK(anthropic.status().kind() == ErrorKind::kTransient);
  Result<ChatResponse> args = ProviderFor("openai")->Parse(
      Reply(200, OpenAIReply("{\"content\":null,\"tool_calls\":[{\"id\":\"c\",\"type\":"
                             "\"function\",\"function\":{\"name\":\"f\",\"arguments\":"
                             "\"{\\\"a\\\":\\\"\xE9\\\"}\"}}]}")),
      kWallNow);
  CHECK(args.status().kind() == ErrorKind::kTransient);
}

TEST_CASE("Parse: a 200 reply carrying an error reports the server's message and kind") {
  struct Row {
    const char* provider;
    const char* body;
    ErrorKind kind;
    const char* message;
  };
  const Row rows[] = {
      {"openai", R"({"error":{"message":"upstream model crashed","code":502}})",
       ErrorKind::kTransient,
       "HTTP 200 with an error in the body (code 502): upstream model crashed"},
      {"openai",
       R"({"error":{"code":429,"message":"Rate limit exceeded: free-models","metadata":{}}})",
       ErrorKind::kRateLimited,
       "HTTP 200 with an error in the body (code 429): Rate limit exceeded: free-models"},
      {"openai", R"j({"error":"Unexpected endpoint or method. (POST /v1/chat/completions)"})j",
       ErrorKind::kTransient,
       "HTTP 200 with an error in the body: Unexpected endpoint or method. (POST "
       "/v1/chat/completions)"},
      {"openai", R"({"error":{"message":"no key","type":"invalid_request_error","code":"401"}})",
       ErrorKind::kPermanent, "HTTP 200 with an error in the body (code 401): no key"},
      {"anthropic",
       R"j({"type":"error","error":{"type":"overloaded_error","message":"Overloaded (in 200)"}})j",
       ErrorKind::kTransient,
       "HTTP 200 with an error in the body (overloaded_error): Overloaded (in 200)"},
      {"anthropic", R"({"type":"error","error":{"type":"rate_limit_error","message":"slow"}})",
       ErrorKind::kRateLimited, "HTTP 200 with an error in the body (rate_limit_error): slow"},
      {"anthropic", R"({"type":"error","error":{"type":"invalid_request_error","message":"bad"}})",
       ErrorKind::kPermanent, "HTTP 200 with an error in the body (invalid_request_error): bad"},
  };
  for (const Row& row : rows) {
    CAPTURE(row.body);
    HttpResponse response = Reply(200, row.body);
    response.headers = {{"retry-after", "3"}};
    Status s = ProviderFor(row.provider)->Parse(response, kWallNow).status();
    CHECK(s.kind() == row.kind);
    CHECK(s.message() == row.message);
    if (row.kind == ErrorKind::kRateLimited) CHECK(s.retry_after() == doctest::Approx(3));
  }
  // "error": null beside an answer is no error.
  CHECK(ProviderFor("openai")
            ->Parse(Reply(200, OpenAIReply(R"({"content":"ok"})", R"("error":null,)")), kWallNow)
            .ok());
}

TEST_CASE("Parse: token counts are clamped to [0, kMaxTokenCount]") {
  struct Row {
    const char* count;
    int64_t expected;
  };
  const Row rows[] = {
      {"12", 12},
      {"-5", 0},
      {"99999999999999999999", kMaxTokenCount},
      {"9223372036854775807", kMaxTokenCount},
      {"18446744073709551615", kMaxTokenCount},
      {"1e300", kMaxTokenCount},
      {"-1e300", 0},
      {"12.7", 12},
      {"\"12\"", 0},
      {"null", 0},
  };
  for (const Row& row : rows) {
    CAPTURE(row.count);
    std::string usage = std::string(R"("usage":{"prompt_tokens":)") + row.count +
                        R"(,"completion_tokens":)" + row.count + "},";
    Result<ChatResponse> r = ProviderFor("openai")->Parse(
        Reply(200, OpenAIReply(R"({"content":"x"})", usage)), kWallNow);
    REQUIRE(r.ok());
    CHECK(r->usage.prompt_tokens == row.expected);
    CHECK(r->usage.completion_tokens == row.expected);
    CHECK(r->usage.tokens() >= 0);
  }
  // A sum of thousands of the largest counts stays exact and positive.
  Usage total;
  Usage huge{kMaxTokenCount, kMaxTokenCount, 0};
  for (int i = 0; i < 100000; ++i) total += huge;
  CHECK(total.tokens() == 200000 * kMaxTokenCount);
}

TEST_CASE("Anthropic Parse: prompt tokens include the prompt cache's") {
  Result<ChatResponse> r =
      ProviderFor("anthropic")
          ->Parse(Reply(200, R"({"content":[{"type":"text","text":"x"}],"stop_reason":"end_turn",
        "usage":{"input_tokens":13,"cache_creation_input_tokens":100,
                 "cache_read_input_tokens":200,"output_tokens":5}})"),
                  kWallNow);
  REQUIRE(r.ok());
  CHECK(r->usage.prompt_tokens == 313);
  CHECK(r->usage.completion_tokens == 5);
  Result<ChatResponse> huge = ProviderFor("anthropic")
                                  ->Parse(Reply(200, R"({"content":[{"type":"text","text":"x"}],
        "usage":{"input_tokens":1e300,"cache_read_input_tokens":1e300,"output_tokens":-4}})"),
                                          kWallNow);
  REQUIRE(huge.ok());
  CHECK(huge->usage.prompt_tokens == kMaxTokenCount);
  CHECK(huge->usage.completion_tokens == 0);
}

TEST_CASE("Parse: refusals and content filters are permanent; no text is transient") {
  struct Row {
    const char* provider;
    std::string body;
    ErrorKind kind;
    const char* message;
  };
  const Row rows[] = {
      {"openai", OpenAIReply(R"({"content":null,"refusal":"I cannot help with that."})"),
       ErrorKind::kPermanent, "the model refused: I cannot help with that."},
      {"openai", OpenAIReply(R"({"content":""})", "", "content_filter"), ErrorKind::kPermanent,
       "the reply was withheld by the content filter (finish_reason content_filter)"},
      {"openai", OpenAIReply(R"({"content":42})"), ErrorKind::kTransient,
       "reply has no text content"},
      {"openai", OpenAIReply(R"({"role":"assistant"})"), ErrorKind::kTransient,
       "reply has no text content"},
      {"openai", OpenAIReply(R"({"content":[{"type":"image_url","image_url":{"url":"x"}}]})"),
       ErrorKind::kTransient, "reply has no text content"},
      {"anthropic", R"({"content":[{"type":"text","text":"I won't."}],"stop_reason":"refusal"})",
       ErrorKind::kPermanent, "the model refused (stop_reason refusal): I won't."},
      {"anthropic",
       R"({"content":[{"type":"image","source":{"type":"base64","data":"x"}}],"stop_reason":"end_turn"})",
       ErrorKind::kTransient, "reply has no text content"},
      {"anthropic", R"({"content":[],"stop_reason":"end_turn"})", ErrorKind::kTransient,
       "reply has no text content"},
  };
  for (const Row& row : rows) {
    CAPTURE(row.body);
    Status s = ProviderFor(row.provider)->Parse(Reply(200, row.body), kWallNow).status();
    CHECK(s.kind() == row.kind);
    CHECK(s.message() == row.message);
  }
  // A reply cut at max_tokens is still an answer; the empty string is text.
  Result<ChatResponse> cut = ProviderFor("openai")->Parse(
      Reply(200, OpenAIReply(R"({"content":"Once upon"})", "", "length")), kWallNow);
  REQUIRE(cut.ok());
  CHECK(cut->finish_reason == "length");
  CHECK(ProviderFor("openai")->Parse(Reply(200, OpenAIReply(R"({"content":""})")), kWallNow).ok());
}

TEST_CASE("Parse maps failures that reach it") {
  HttpResponse reset;
  reset.transport = Status::Error(ErrorKind::kTransient, "connection reset");
  CHECK(ProviderFor("openai")->Parse(reset, kWallNow).status().kind() == ErrorKind::kTransient);
  CHECK(ProviderFor("anthropic")->Parse(Reply(401, "{}"), kWallNow).status().kind() ==
        ErrorKind::kPermanent);
}

}  // namespace
}  // namespace keel
