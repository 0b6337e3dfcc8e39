// MockResponder: replies, directives, JSON and schema outputs, the tool loop
// and bad input, in both dialects.
#include "nodes/mock_reply.h"

#include <doctest/doctest.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace keel {
namespace {

constexpr MockDialect kOpenAI = MockDialect::kOpenAI;
constexpr MockDialect kAnthropic = MockDialect::kAnthropic;

rapidjson::Document Parse(const std::string& text) {
  rapidjson::Document doc;
  doc.Parse(text.c_str(), text.size());
  REQUIRE_MESSAGE(!doc.HasParseError(), text);
  return doc;
}

std::string Dump(const rapidjson::Value& v) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  v.Accept(w);
  return buf.GetString();
}

// A JSON string literal of `text`.
std::string Quote(const std::string& text) {
  rapidjson::Value v(text.c_str(), static_cast<rapidjson::SizeType>(text.size()));
  return Dump(v);
}

// A request with one user message, plus `extra` members (JSON text without braces).
std::string Ask(const std::string& user, const std::string& extra = "") {
  return R"({"model":"m1","messages":[{"role":"user","content":)" + Quote(user) + "}]" +
         (extra.empty() ? "" : "," + extra) + "}";
}

std::string OpenAIText(const MockReply& r) {
  rapidjson::Document doc = Parse(r.body);
  const rapidjson::Value& content = doc["choices"][0]["message"]["content"];
  return content.IsString() ? content.GetString() : "<null>";
}

std::string AnthropicText(const MockReply& r) {
  rapidjson::Document doc = Parse(r.body);
  for (const auto& block : doc["content"].GetArray()) {
    if (std::string(block["type"].GetString()) == "text") return block["text"].GetString();
  }
  return "<none>";
}

TEST_CASE("echoes the last user message in the OpenAI shape") {
  MockResponder mock;
  MockReply r = mock.Respond(
      R"({"model":"m1","messages":[{"role":"system","content":"be brief"},
          {"role":"user","content":"first"},{"role":"assistant","content":"ok"},
          {"role":"user","content":[{"type":"text","text":"hello there"}]}]})",
      kOpenAI);
  CHECK(r.status == 200);
  CHECK(r.fault.empty());
  CHECK(r.retry_after == -1);
  CHECK(r.model == "m1");
  CHECK(r.user == "hello there");
  rapidjson::Document doc = Parse(r.body);
  CHECK(std::string(doc["object"].GetString()) == "chat.completion");
  CHECK(std::string(doc["model"].GetString()) == "m1");
  CHECK(std::string(doc["id"].GetString()).rfind("chatcmpl-", 0) == 0);
  CHECK(doc["created"].IsInt64());
  const auto& choice = doc["choices"][0];
  CHECK(choice["index"].GetInt() == 0);
  CHECK(std::string(choice["message"]["role"].GetString()) == "assistant");
  CHECK(std::string(choice["message"]["content"].GetString()) == "echo: hello there");
  CHECK(!choice["message"].HasMember("tool_calls"));
  CHECK(std::string(choice["finish_reason"].GetString()) == "stop");
  const auto& usage = doc["usage"];
  CHECK(usage["prompt_tokens"].GetInt() > 0);
  CHECK(usage["completion_tokens"].GetInt() == 5);  // "echo: hello there" is 17 characters
  CHECK(usage["total_tokens"].GetInt() ==
        usage["prompt_tokens"].GetInt() + usage["completion_tokens"].GetInt());
}

TEST_CASE("echoes the last user message in the Anthropic shape") {
  MockResponder mock;
  MockReply r = mock.Respond(
      R"({"model":"claude-x","max_tokens":100,"system":"be brief",
          "messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]})",
      kAnthropic);
  CHECK(r.status == 200);
  rapidjson::Document doc = Parse(r.body);
  CHECK(std::string(doc["type"].GetString()) == "message");
  CHECK(std::string(doc["role"].GetString()) == "assistant");
  CHECK(std::string(doc["model"].GetString()) == "claude-x");
  CHECK(std::string(doc["id"].GetString()).rfind("msg_", 0) == 0);
  CHECK(doc["content"].Size() == 1);
  CHECK(AnthropicText(r) == "echo: hi");
  CHECK(std::string(doc["stop_reason"].GetString()) == "end_turn");
  CHECK(doc["usage"]["input_tokens"].GetInt() > 0);
  CHECK(doc["usage"]["output_tokens"].GetInt() == 2);
}

TEST_CASE("the same request gets the same reply") {
  MockResponder a;
  MockResponder b;
  std::string req = Ask("same");
  CHECK(a.Respond(req, kOpenAI).body == b.Respond(req, kOpenAI).body);
  CHECK(a.Respond(req, kOpenAI).body == a.Respond(req, kOpenAI).body);
  CHECK(a.Respond(Ask("other"), kOpenAI).body != a.Respond(req, kOpenAI).body);
}

TEST_CASE("directives are removed from the echo and latency is reported") {
  MockResponder mock;
  MockReply r = mock.Respond(Ask("[[mock:latency=250]] ping"), kOpenAI);
  CHECK(r.status == 200);
  CHECK(r.latency == doctest::Approx(0.25));
  CHECK(OpenAIText(r) == "echo: ping");
  CHECK(r.user == "[[mock:latency=250]] ping");
}

TEST_CASE("status faults answer with the dialect's error body") {
  MockResponder mock;
  for (int status : {500, 502, 503, 529, 400, 401, 403, 404}) {
    CAPTURE(status);
    std::string directive = "[[mock:fault=" + std::to_string(status) + "]] hi";
    MockReply o = mock.Respond(Ask(directive), kOpenAI);
    CHECK(o.status == status);
    CHECK(o.fault.empty());
    CHECK(o.retry_after == -1);
    rapidjson::Document od = Parse(o.body);
    CHECK(od["error"]["message"].IsString());
    CHECK(od["error"]["type"].IsString());
    CHECK(od["error"]["code"].IsString());

    MockReply a = mock.Respond(Ask(directive), kAnthropic);
    CHECK(a.status == status);
    rapidjson::Document ad = Parse(a.body);
    CHECK(std::string(ad["type"].GetString()) == "error");
    CHECK(ad["error"]["type"].IsString());
    CHECK(ad["error"]["message"].IsString());
  }
  rapidjson::Document overloaded = Parse(mock.Respond(Ask("[[mock:fault=529]]"), kAnthropic).body);
  CHECK(std::string(overloaded["error"]["type"].GetString()) == "overloaded_error");
}

TEST_CASE("a 429 carries retry_after") {
  MockResponder mock;
  MockReply r = mock.Respond(Ask("[[mock:fault=429]] hi"), kOpenAI);
  CHECK(r.status == 429);
  CHECK(r.retry_after == 1);
  CHECK(std::string(Parse(r.body)["error"]["code"].GetString()) == "rate_limit_exceeded");
  r = mock.Respond(Ask("hi [[mock:fault=429]][[mock:retry_after=2.5]]"), kAnthropic);
  CHECK(r.status == 429);
  CHECK(r.retry_after == 2.5);
  CHECK(std::string(Parse(r.body)["error"]["type"].GetString()) == "rate_limit_error");
}

TEST_CASE("transport faults: hang, reset, malformed, truncated") {
  MockResponder mock;
  std::string normal = mock.Respond(Ask("hi"), kOpenAI).body;

  MockReply hang = mock.Respond(Ask("[[mock:fault=hang]] hi"), kOpenAI);
  CHECK(hang.fault == "hang");
  CHECK(hang.body.empty());
  MockReply reset = mock.Respond(Ask("[[mock:fault=reset]] hi"), kAnthropic);
  CHECK(reset.fault == "reset");
  CHECK(reset.body.empty());

  MockReply malformed = mock.Respond(Ask("[[mock:fault=malformed]] hi"), kOpenAI);
  CHECK(malformed.fault == "malformed");
  CHECK(malformed.status == 200);
  rapidjson::Document doc;
  doc.Parse(malformed.body.c_str(), malformed.body.size());
  CHECK(doc.HasParseError());

  MockReply truncated = mock.Respond(Ask("[[mock:fault=truncated]] hi"), kOpenAI);
  CHECK(truncated.fault == "truncated");
  CHECK(!truncated.body.empty());
  MockReply full = mock.Respond(Ask("[[mock:fault=truncated]] hi"), kOpenAI);
  CHECK(full.body == truncated.body);
  doc.Parse(truncated.body.c_str(), truncated.body.size());
  CHECK(doc.HasParseError());
}

TEST_CASE("times=N faults the first N identical requests, then succeeds") {
  MockResponder mock;
  std::string req = Ask("[[mock:fault=503]][[mock:times=2]] flaky");
  CHECK(mock.Respond(req, kOpenAI).status == 503);
  CHECK(mock.Respond(Ask("[[mock:fault=503]][[mock:times=2]] other"), kOpenAI).status == 503);
  CHECK(mock.Respond(req, kOpenAI).status == 503);
  MockReply ok = mock.Respond(req, kOpenAI);
  CHECK(ok.status == 200);
  CHECK(OpenAIText(ok) == "echo: flaky");
  CHECK(mock.Respond(req, kOpenAI).status == 200);
  // The other conversation has its own count.
  CHECK(mock.Respond(Ask("[[mock:fault=503]][[mock:times=2]] other"), kOpenAI).status == 503);
  CHECK(mock.Respond(Ask("[[mock:fault=503]][[mock:times=2]] other"), kOpenAI).status == 200);
  CHECK(mock.Respond(Ask("[[mock:fault=hang]][[mock:times=0]] x"), kOpenAI).fault.empty());
}

TEST_CASE("times=N counts exactly under concurrency" * doctest::timeout(30)) {
  MockResponder mock;
  std::string req = Ask("[[mock:fault=429]][[mock:times=100]] busy");
  std::atomic<int> faults{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 40; ++i) faults += mock.Respond(req, kOpenAI).status == 429;
    });
  }
  for (auto& t : threads) t.join();
  CHECK(faults == 100);
}

TEST_CASE("reply= sets the text and tokens= the usage") {
  MockResponder mock;
  MockReply r = mock.Respond(Ask("[[mock:reply=the answer is 42]] question"), kOpenAI);
  CHECK(OpenAIText(r) == "the answer is 42");
  r = mock.Respond(Ask("[[mock:tokens=7,9]] question"), kOpenAI);
  rapidjson::Document doc = Parse(r.body);
  CHECK(doc["usage"]["prompt_tokens"].GetInt() == 7);
  CHECK(doc["usage"]["completion_tokens"].GetInt() == 9);
  CHECK(doc["usage"]["total_tokens"].GetInt() == 16);
  // The total of absurd counts stays at INT64_MAX instead of overflowing.
  r = mock.Respond(Ask("[[mock:tokens=2,9223372036854775807]] q"), kOpenAI);
  doc = Parse(r.body);
  CHECK(doc["usage"]["completion_tokens"].GetInt64() == INT64_MAX);
  CHECK(doc["usage"]["total_tokens"].GetInt64() == INT64_MAX);
  r = mock.Respond(Ask("[[mock:tokens=3,4]][[mock:reply=x]]"), kAnthropic);
  doc = Parse(r.body);
  CHECK(AnthropicText(r) == "x");
  CHECK(doc["usage"]["input_tokens"].GetInt() == 3);
  CHECK(doc["usage"]["output_tokens"].GetInt() == 4);
}

TEST_CASE("directives in the system prompt apply too") {
  MockResponder mock;
  MockReply r = mock.Respond(
      R"({"messages":[{"role":"system","content":"[[mock:fault=502]]"},{"role":"user","content":"hi"}]})",
      kOpenAI);
  CHECK(r.status == 502);
  r = mock.Respond(
      R"({"system":"[[mock:reply=from system]]","messages":[{"role":"user","content":"hi"}]})",
      kAnthropic);
  CHECK(AnthropicText(r) == "from system");
}

TEST_CASE("call= makes tool calls, several for parallel calls") {
  MockResponder mock;
  MockReply r = mock.Respond(
      Ask(R"(go [[mock:call=search {"q":"tbb"}]] [[mock:call=fetch {"url":"http://x/]"}]])"),
      kOpenAI);
  CHECK(r.status == 200);
  rapidjson::Document doc = Parse(r.body);
  const auto& choice = doc["choices"][0];
  CHECK(std::string(choice["finish_reason"].GetString()) == "tool_calls");
  CHECK(choice["message"]["content"].IsNull());
  const auto& calls = choice["message"]["tool_calls"];
  REQUIRE(calls.Size() == 2);
  CHECK(std::string(calls[0]["type"].GetString()) == "function");
  CHECK(std::string(calls[0]["function"]["name"].GetString()) == "search");
  CHECK(std::string(calls[0]["function"]["arguments"].GetString()) == R"({"q":"tbb"})");
  CHECK(std::string(calls[1]["function"]["name"].GetString()) == "fetch");
  CHECK(std::string(calls[1]["function"]["arguments"].GetString()) == R"({"url":"http://x/]"})");
  CHECK(std::string(calls[0]["id"].GetString()) != calls[1]["id"].GetString());

  r = mock.Respond(Ask(R"([[mock:call=lookup {"id":3}]] [[mock:call=ping]])"), kAnthropic);
  doc = Parse(r.body);
  CHECK(std::string(doc["stop_reason"].GetString()) == "tool_use");
  REQUIRE(doc["content"].Size() == 2);
  CHECK(std::string(doc["content"][0]["type"].GetString()) == "tool_use");
  CHECK(std::string(doc["content"][0]["name"].GetString()) == "lookup");
  CHECK(doc["content"][0]["input"]["id"].GetInt() == 3);
  CHECK(Dump(doc["content"][1]["input"]) == "{}");
}

TEST_CASE("JSON output: json_object echoes as an object") {
  MockResponder mock;
  MockReply r =
      mock.Respond(Ask("list it", R"("response_format":{"type":"json_object"})"), kOpenAI);
  CHECK(OpenAIText(r) == R"({"echo":"list it"})");
  r = mock.Respond(
      R"({"system":"Answer in JSON only.","messages":[{"role":"user","content":"hey"}]})",
      kAnthropic);
  CHECK(AnthropicText(r) == R"({"echo":"hey"})");
  r = mock.Respond(Ask("[[mock:reply={\"a\":1}]]", R"("response_format":{"type":"json_object"})"),
                   kOpenAI);
  CHECK(OpenAIText(r) == R"({"a":1})");
}

TEST_CASE("JSON output: the smallest value satisfying a schema") {
  MockResponder mock;
  auto with_schema = [&](const std::string& schema) {
    return OpenAIText(mock.Respond(
        Ask("x", R"("response_format":{"type":"json_schema","json_schema":{"name":"s","schema":)" +
                     schema + "}}"),
        kOpenAI));
  };
  CHECK(with_schema(R"({"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}},
                        "required":["b"]})") == R"({"b":0})");
  CHECK(with_schema(
            R"({"type":"object","properties":{"a":{"type":"string"},"b":{"type":"boolean"}}})") ==
        R"({"a":"mock","b":true})");
  CHECK(with_schema(R"({"type":"object","required":["n","tags","kind","name","score"],"properties":{
      "n":{"type":"integer","minimum":3},
      "tags":{"type":"array","items":{"type":"string","minLength":6},"minItems":2},
      "kind":{"enum":["x","y"]},
      "name":{"type":"string","const":"fixed"},
      "score":{"type":["number","null"],"minimum":0.5}}})") ==
        R"({"n":3,"tags":["mockxx","mockxx"],"kind":"x","name":"fixed","score":0.5})");
  CHECK(
      with_schema(
          R"({"$defs":{"p":{"type":"object","required":["id"],"properties":{"id":{"type":"integer"}}}},
                        "type":"object","required":["owner"],"properties":{"owner":{"$ref":"#/$defs/p"}}})") ==
      R"({"owner":{"id":0}})");
  CHECK(with_schema(R"({"type":"array"})") == "[]");
  CHECK(with_schema(R"({"type":"object","required":["a","b"],"properties":{"a":{"$ref":"#nope"},
                        "b":{"$ref":"#/missing"}}})") == R"({"a":null,"b":null})");
  CHECK(with_schema(R"({"type":"object","properties":{"self":{"$ref":"#"}},"required":["self"]})")
            .size() > 100);  // a recursive schema stops at a depth limit
  CHECK(with_schema(R"({"type":"string","maxLength":2})") == R"("mo")");
}

TEST_CASE("tool loop: calls the first tool, then quotes the tool results (OpenAI)") {
  MockResponder mock;
  const std::string tools =
      R"("tools":[{"type":"function","function":{"name":"weather","parameters":{"type":"object",
          "properties":{"city":{"type":"string"},"days":{"type":"integer","minimum":1}},
          "required":["city","days"]}}},
        {"type":"function","function":{"name":"other","parameters":{"type":"object"}}}])";
  MockReply first = mock.Respond(Ask("weather in Oslo?", tools), kOpenAI);
  rapidjson::Document doc = Parse(first.body);
  const auto& calls = doc["choices"][0]["message"]["tool_calls"];
  REQUIRE(calls.Size() == 1);
  CHECK(std::string(calls[0]["function"]["name"].GetString()) == "weather");
  CHECK(std::string(calls[0]["function"]["arguments"].GetString()) ==
        R"({"city":"mock","days":1})");
  const std::string call_id = calls[0]["id"].GetString();

  const std::string second_req =
      R"({"model":"m1","messages":[{"role":"user","content":"weather in Oslo?"},
          {"role":"assistant","content":null,"tool_calls":[{"id":")" +
      call_id +
      R"(","type":"function","function":{"name":"weather","arguments":"{}"}}]},
          {"role":"tool","tool_call_id":")" +
      call_id + R"(","content":"sunny, 21C"}],)" + tools + "}";
  MockReply second = mock.Respond(second_req, kOpenAI);
  CHECK(OpenAIText(second) == "tool results: sunny, 21C");
  CHECK(std::string(Parse(second.body)["choices"][0]["finish_reason"].GetString()) == "stop");

  MockReply forced = mock.Respond(
      Ask("x", tools + R"(,"tool_choice":{"type":"function","function":{"name":"other"}})"),
      kOpenAI);
  CHECK(std::string(Parse(forced.body)["choices"][0]["message"]["tool_calls"][0]["function"]["name"]
                        .GetString()) == "other");
  MockReply none = mock.Respond(Ask("x", tools + R"(,"tool_choice":"none")"), kOpenAI);
  CHECK(OpenAIText(none) == "echo: x");
}

TEST_CASE("tool loop: calls the first tool, then quotes the tool results (Anthropic)") {
  MockResponder mock;
  const std::string tools =
      R"("tools":[{"name":"lookup","input_schema":{"type":"object","properties":{"id":{"type":"integer"}}}}])";
  MockReply first = mock.Respond(Ask("find 7", tools), kAnthropic);
  rapidjson::Document doc = Parse(first.body);
  CHECK(std::string(doc["stop_reason"].GetString()) == "tool_use");
  CHECK(std::string(doc["content"][0]["name"].GetString()) == "lookup");
  CHECK(Dump(doc["content"][0]["input"]) == R"({"id":0})");

  MockReply second = mock.Respond(
      R"({"model":"c","messages":[{"role":"user","content":"find 7"},
          {"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"lookup","input":{"id":0}}]},
          {"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"record 7"},
                                    {"type":"tool_result","tool_use_id":"t2",
                                     "content":[{"type":"text","text":"record 8"}]}]}],)" +
          tools + "}",
      kAnthropic);
  CHECK(AnthropicText(second) == "tool results: record 7 | record 8");
  CHECK(std::string(Parse(second.body)["stop_reason"].GetString()) == "end_turn");
}

TEST_CASE("bad input gets a 400 with an error body") {
  MockResponder mock;
  for (MockDialect dialect : {kOpenAI, kAnthropic}) {
    for (const std::string& body :
         {std::string("not json"), std::string("[1]"), std::string(R"({"model":"m"})"),
          std::string(R"({"messages":[]})"), std::string(R"({"messages":"hi"})"),
          Ask("[[mock:nope=1]]"), Ask("[[mock:fault=418]]"), Ask("[[mock:times=x]]"),
          Ask("[[mock:call=f [1]]]"), Ask("[[mock:tokens=1]]"), Ask("[[mock:fault=500")}) {
      CAPTURE(body);
      MockReply r = mock.Respond(body, dialect);
      CHECK(r.status == 400);
      CHECK(r.fault.empty());
      rapidjson::Document doc = Parse(r.body);
      CHECK(doc["error"]["message"].IsString());
      CHECK(doc.HasMember("type") == (dialect == kAnthropic));
    }
  }
}

TEST_CASE("deeply nested JSON in a request or a call directive gets a 400, not a stack overflow") {
  MockResponder mock;
  const std::string deep(1'000'000, '[');
  for (MockDialect dialect : {kOpenAI, kAnthropic}) {
    for (const std::string& body :
         {deep, R"({"messages":)" + deep, Ask("[[mock:call=f {\"a\":" + deep + "]]")}) {
      MockReply r = mock.Respond(body, dialect);
      CHECK(r.status == 400);
      std::string message = Parse(r.body)["error"]["message"].GetString();
      CHECK_MESSAGE((message.find("nested deeper than") != std::string::npos ||
                     message.find("expected NAME {JSON object}") != std::string::npos),
                    message);
    }
  }
}

TEST_CASE("MockFaultReply and IsMockFault") {
  CHECK(IsMockFault("hang"));
  CHECK(IsMockFault("529"));
  CHECK(!IsMockFault("200"));
  CHECK(!IsMockFault(""));
  MockReply r = MockFaultReply(kOpenAI, "429", "{}", 4);
  CHECK(r.status == 429);
  CHECK(r.retry_after == 4);
  CHECK(r.fault.empty());
  r = MockFaultReply(kAnthropic, "truncated", "0123456789", 1);
  CHECK(r.fault == "truncated");
  CHECK(r.body == "01234");
}

}  // namespace
}  // namespace keel
