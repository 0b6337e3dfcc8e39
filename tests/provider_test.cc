#include "nodes/provider.h"

#include <doctest/doctest.h>
#include <rapidjson/document.h>
#include <rapidjson/pointer.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <string>

namespace keel {
namespace {

constexpr double kWallNow = 1.7e9;
const char* const kKey = "sk-test-SECRET-0123456789";

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

std::string HeaderOf(const HttpRequest& request, const std::string& name) {
  for (const auto& [key, value] : request.headers) {
    if (key == name) return value;
  }
  return "<absent>";
}

HttpResponse Reply(int status, std::string body) {
  HttpResponse response;
  response.status = status;
  response.body = std::move(body);
  return response;
}

ProviderConfig Config(const std::string& kind, const std::string& base_url) {
  ProviderConfig config;
  config.name = "fast";
  config.kind = kind;
  config.base_url = base_url;
  config.model = "default-model";
  config.headers = {{"X-Extra", "yes"}};
  return config;
}

// A conversation with one tool round: user, assistant tool calls, two results.
ChatRequest ToolConversation() {
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

TEST_CASE("HttpStatusFailure: server text in messages is valid UTF-8") {
  Status latin1 =
      HttpStatusFailure(Reply(500, "Erreur interne du serveur \xE9t\xE9"), "fast", kWallNow);
  CHECK(latin1.message() ==
        "provider 'fast': HTTP 500: Erreur interne du serveur \xEF\xBF\xBDt\xEF\xBF\xBD");
  Status json_latin1 =
      HttpStatusFailure(Reply(400, "{\"error\":{\"message\":\"caf\xE9\"}}"), "fast", kWallNow);
  CHECK(json_latin1.message().find("caf\xEF\xBF\xBD") != std::string::npos);
}

TEST_CASE("HttpStatusFailure: a redirect names its Location; a long Retry-After is cut") {
  HttpResponse moved = Reply(308, "");
  moved.headers = {{"location", "https://api.example.com/v1/chat/completions"}};
  CHECK(HttpStatusFailure(moved, "fast", kWallNow).message() ==
        "provider 'fast': HTTP 308 (redirected to https://api.example.com/v1/chat/completions)");
  HttpResponse limited = Reply(429, "");
  limited.headers = {{"retry-after", "86400"}};
  Status s = HttpStatusFailure(limited, "fast", kWallNow);
  CHECK(s.retry_after() == doctest::Approx(kMaxRetryAfter));
  CHECK(s.message() == "provider 'fast': HTTP 429 (Retry-After of 86400 s cut to 3600 s)");
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

TEST_CASE("HttpStatusFailure: the status table") {
  struct Row {
    int status;
    ErrorKind kind;
  };
  const Row rows[] = {
      {429, ErrorKind::kRateLimited}, {408, ErrorKind::kTransient}, {409, ErrorKind::kTransient},
      {425, ErrorKind::kTransient},   {500, ErrorKind::kTransient}, {502, ErrorKind::kTransient},
      {503, ErrorKind::kTransient},   {504, ErrorKind::kTransient}, {529, ErrorKind::kTransient},
      {400, ErrorKind::kPermanent},   {401, ErrorKind::kPermanent}, {403, ErrorKind::kPermanent},
      {404, ErrorKind::kPermanent},   {422, ErrorKind::kPermanent}, {413, ErrorKind::kPermanent},
  };
  for (const Row& row : rows) {
    CAPTURE(row.status);
    Status s = HttpStatusFailure(Reply(row.status, ""), "fast", kWallNow);
    CHECK(s.kind() == row.kind);
    CHECK(s.message() == "provider 'fast': HTTP " + std::to_string(row.status));
  }
}

TEST_CASE("HttpStatusFailure: messages from error bodies") {
  Status openai = HttpStatusFailure(
      Reply(400, R"({"error":{"message":"bad model","type":"invalid_request_error"}})"), "fast",
      kWallNow);
  CHECK(openai.message() == "provider 'fast': HTTP 400: bad model");

  Status anthropic = HttpStatusFailure(
      Reply(529, R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})"),
      "claude", kWallNow);
  CHECK(anthropic.kind() == ErrorKind::kTransient);
  CHECK(anthropic.message() == "provider 'claude': HTTP 529: Overloaded");

  Status plain = HttpStatusFailure(Reply(502, "Bad\ngateway\x01"), "fast", kWallNow);
  CHECK(plain.message() == "provider 'fast': HTTP 502: Bad\\ngateway\\x01");

  Status long_body = HttpStatusFailure(Reply(500, std::string(5000, 'x')), "fast", kWallNow);
  CHECK(long_body.message().size() < 260);
}

TEST_CASE("HttpStatusFailure: Retry-After on 429 only") {
  HttpResponse limited = Reply(429, R"({"error":{"message":"slow down"}})");
  limited.headers = {{"retry-after", "7"}};
  Status s = HttpStatusFailure(limited, "fast", kWallNow);
  CHECK(s.kind() == ErrorKind::kRateLimited);
  CHECK(s.retry_after() == doctest::Approx(7));
  CHECK(s.message() == "provider 'fast': HTTP 429: slow down");

  CHECK(HttpStatusFailure(Reply(429, ""), "fast", kWallNow).retry_after() < 0);

  HttpResponse unavailable = Reply(503, "");
  unavailable.headers = {{"retry-after", "7"}};
  CHECK(HttpStatusFailure(unavailable, "fast", kWallNow).retry_after() < 0);
}

TEST_CASE("AddHeaderLine: names lower-cased and trimmed; a line without a name is ignored") {
  HttpResponse r;
  r.AddHeaderLine("HTTP/1.1 429 Too Many Requests\r\n");
  r.AddHeaderLine("Retry-After:  7 \r\n");
  r.AddHeaderLine(": 5\r\n");
  r.AddHeaderLine("  \t: 5\r\n");  // blanks only before the colon: no name either
  r.AddHeaderLine("no colon\r\n");
  REQUIRE(r.headers.size() == 1);
  CHECK(r.headers[0].first == "retry-after");
  CHECK(r.headers[0].second == "7");
  CHECK(r.Header("") == "");
  r.AddHeaderLine("HTTP/2 200\r\n");
  CHECK(r.headers.empty());
}

TEST_CASE("Redact") {
  CHECK(Redact("key=abc and abc again", "abc") == "key=[redacted] and [redacted] again");
  CHECK(Redact("nothing here", "abc") == "nothing here");
  CHECK(Redact("text", "") == "text");
  CHECK(Redact("aaaa", "aa") == "[redacted][redacted]");
}

TEST_CASE("A key echoed by the server never reaches a failure message") {
  const std::string body = std::string(R"({"error":{"message":"Incorrect API key provided: )") +
                           kKey + R"(. You can find your key at ..."}})";
  Status s = HttpStatusFailure(Reply(401, Redact(body, kKey)), "fast", kWallNow);
  CHECK(s.kind() == ErrorKind::kPermanent);
  CHECK(s.message().find(kKey) == std::string::npos);
  CHECK(s.message().find("[redacted]") != std::string::npos);

  // Even where the excerpt would cut the key in two.
  std::string padded = std::string(190, '-') + kKey;
  Status cut = HttpStatusFailure(Reply(500, Redact(padded, kKey)), "fast", kWallNow);
  CHECK(cut.message().find("sk-test") == std::string::npos);
}

}  // namespace
}  // namespace keel
