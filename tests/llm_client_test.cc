// LlmClient with mock providers on a fake clock: latency, deadlines,
// cancellation, directives and their error kinds, tools, JSON output, the
// gate; and CheckJsonOutput.
#include "nodes/llm_client.h"

#include <doctest/doctest.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/fake_clock.h"
#include "tests/llm_client_support.h"

namespace keel {
namespace {

using testing::Ask;
using testing::Capture;

ProviderConfig Mock(const std::string& name, double latency = 0) {
  ProviderConfig config;
  config.name = name;
  config.kind = "mock";
  config.model = "mock-model";
  config.latency = latency;
  return config;
}

// A client with mock providers on a fake clock; no HTTP loop.
struct MockFixture {
  FakeClock clock;
  LlmClient client{&clock, nullptr};

  void Add(ProviderConfig config) { REQUIRE(client.AddProvider(std::move(config)).ok()); }
  // Calls `provider` and runs the clock until the call is done (at most 100 timers).
  void CallAndRun(Capture& capture, const std::string& provider, ChatRequest request,
                  double deadline = 0, const CancelToken* cancel = nullptr) {
    client.Call(provider, std::move(request), cancel, deadline, capture.Done());
    for (int i = 0; i < 100 && !capture.done() && clock.RunNext(); ++i) {
    }
    REQUIRE(capture.done());
  }
};

TEST_CASE("AddProvider checks the kind and base_url") {
  FakeClock clock;
  LlmClient client(&clock, nullptr);
  ProviderConfig config = Mock("m");
  CHECK(client.AddProvider(config).ok());
  REQUIRE(client.Find("m") != nullptr);
  CHECK(client.Find("m")->kind == "mock");
  CHECK(client.Find("other") == nullptr);

  config.kind = "gemini";
  Status unknown = client.AddProvider(config);
  CHECK(unknown.kind() == ErrorKind::kPermanent);
  CHECK(unknown.message().find("gemini") != std::string::npos);

  config.kind = "openai";
  CHECK(client.AddProvider(config).kind() == ErrorKind::kPermanent);
  config.kind = "anthropic";
  CHECK(client.AddProvider(config).kind() == ErrorKind::kPermanent);
  config.base_url = "http://127.0.0.1:1";
  CHECK(client.AddProvider(config).ok());
  CHECK(client.Find("m")->kind == "anthropic");
}

TEST_CASE("an unknown provider fails permanently at once") {
  MockFixture f;
  Capture capture;
  f.client.Call("nope", Ask("hi"), nullptr, 0, capture.Done());
  REQUIRE(capture.done());
  CHECK(capture.status().kind() == ErrorKind::kPermanent);
  CHECK(capture.status().message() == "unknown provider 'nope'");
  CHECK(capture.record().outcome.kind() == ErrorKind::kPermanent);
}

TEST_CASE("requests the wire formats cannot carry fail permanently") {
  MockFixture f;
  f.Add(Mock("m"));
  Capture messages;
  ChatRequest bad = Ask("hi");
  bad.messages_json = R"({"role":"user"})";
  f.client.Call("m", bad, nullptr, 0, messages.Done());
  REQUIRE(messages.done());
  CHECK(messages.status().kind() == ErrorKind::kPermanent);

  Capture schema;
  ChatRequest bad_schema = Ask("hi");
  bad_schema.output = OutputMode::kSchema;
  bad_schema.schema_json = "{not json";
  f.client.Call("m", bad_schema, nullptr, 0, schema.Done());
  REQUIRE(schema.done());
  CHECK(schema.status().kind() == ErrorKind::kPermanent);
}

TEST_CASE("mock: the reply comes after the provider's latency") {
  MockFixture f;
  ProviderConfig config = Mock("m", 2.0);
  config.input_price = 2;
  config.output_price = 10;
  f.Add(config);
  Capture capture;
  f.client.Call("m", Ask("hello"), nullptr, 0, capture.Done());
  f.clock.Advance(1.9);
  CHECK_FALSE(capture.done());
  f.clock.Advance(0.1);
  REQUIRE(capture.done());
  REQUIRE(capture.result().ok());
  CHECK(capture.result()->text == "echo: hello");
  CHECK(capture.result()->finish_reason == "stop");
  LlmCallRecord record = capture.record();
  CHECK(record.provider == "m");
  CHECK(record.model == "mock-model");
  CHECK(record.seconds == doctest::Approx(2.0));
  CHECK(record.queued == doctest::Approx(0));
  CHECK(record.http_status == 0);
  CHECK(record.outcome.ok());
  CHECK(record.usage.prompt_tokens > 0);
  CHECK(record.usage.completion_tokens > 0);
  CHECK(record.cost ==
        doctest::Approx((2.0 * record.usage.prompt_tokens + 10.0 * record.usage.completion_tokens) /
                        1e6));
  CHECK(f.clock.pending() == 0);
}

TEST_CASE("mock: latency and token directives") {
  MockFixture f;
  ProviderConfig config = Mock("m", 1.0);
  config.input_price = 2;
  config.output_price = 10;
  f.Add(config);
  Capture capture;
  f.client.Call("m", Ask("hi [[mock:latency=500]] [[mock:tokens=1000,500]]"), nullptr, 0,
                capture.Done());
  f.clock.Advance(1.4);
  CHECK_FALSE(capture.done());
  f.clock.Advance(0.1);
  REQUIRE(capture.done());
  REQUIRE(capture.result().ok());
  CHECK(capture.result()->usage.prompt_tokens == 1000);
  CHECK(capture.result()->usage.completion_tokens == 500);
  LlmCallRecord record = capture.record();
  CHECK(record.usage.prompt_tokens == 1000);
  CHECK(record.usage.completion_tokens == 500);
  CHECK(record.cost == doctest::Approx(0.007));
  CHECK(record.seconds == doctest::Approx(1.5));
}

TEST_CASE("mock: hang ends with kTimeout exactly at the deadline") {
  MockFixture f;
  f.Add(Mock("m"));
  Capture capture;
  double deadline = f.clock.Now() + 5;
  f.client.Call("m", Ask("hi [[mock:fault=hang]]"), nullptr, deadline, capture.Done());
  f.clock.Advance(4.99);
  CHECK_FALSE(capture.done());
  f.clock.Advance(0.01);
  REQUIRE(capture.done());
  CHECK(capture.status().kind() == ErrorKind::kTimeout);
  CHECK(capture.status().message().find("timed out") != std::string::npos);
  CHECK(capture.record().seconds == doctest::Approx(5.0));
  CHECK(f.clock.pending() == 0);
}

TEST_CASE("mock: a deadline before the latency ends wins") {
  MockFixture f;
  f.Add(Mock("m", 10));
  Capture capture;
  f.CallAndRun(capture, "m", Ask("hi"), f.clock.Now() + 3);
  CHECK(capture.status().kind() == ErrorKind::kTimeout);
  CHECK(capture.record().seconds == doctest::Approx(3.0));
  f.clock.Advance(20);
  CHECK(capture.calls() == 1);
}

TEST_CASE("mock: cancelling mid-wait ends the call at once") {
  MockFixture f;
  f.Add(Mock("m", 10));
  CancelToken token;
  Capture capture;
  f.client.Call("m", Ask("hi"), &token, f.clock.Now() + 30, capture.Done());
  f.clock.Advance(1);
  CHECK_FALSE(capture.done());
  token.Cancel();
  REQUIRE(capture.done());
  CHECK(capture.status().kind() == ErrorKind::kCancelled);
  CHECK(capture.record().seconds == doctest::Approx(1.0));
  CHECK(f.clock.pending() == 0);
  f.clock.Advance(60);
  CHECK(capture.calls() == 1);
}

TEST_CASE("mock: an already cancelled token ends the call without an answer") {
  MockFixture f;
  f.Add(Mock("m", 1));
  CancelToken token;
  token.Cancel();
  Capture capture;
  f.CallAndRun(capture, "m", Ask("hi"), 0, &token);
  CHECK(capture.status().kind() == ErrorKind::kCancelled);
  f.clock.Advance(5);
  CHECK(capture.calls() == 1);
}

TEST_CASE("mock: fault directives map to error kinds") {
  struct Row {
    const char* fault;
    ErrorKind kind;
  };
  const Row rows[] = {
      {"500", ErrorKind::kTransient},       {"502", ErrorKind::kTransient},
      {"503", ErrorKind::kTransient},       {"529", ErrorKind::kTransient},
      {"400", ErrorKind::kPermanent},       {"401", ErrorKind::kPermanent},
      {"403", ErrorKind::kPermanent},       {"404", ErrorKind::kPermanent},
      {"malformed", ErrorKind::kTransient}, {"truncated", ErrorKind::kTransient},
      {"reset", ErrorKind::kTransient},     {"429", ErrorKind::kRateLimited},
  };
  for (const Row& row : rows) {
    CAPTURE(row.fault);
    MockFixture f;
    f.Add(Mock("m", 0.5));
    Capture capture;
    f.CallAndRun(capture, "m", Ask(std::string("hi [[mock:fault=") + row.fault + "]]"));
    CHECK(capture.status().kind() == row.kind);
    CHECK(capture.record().outcome.kind() == row.kind);
    CHECK(capture.status().message().find("provider 'm': ") == 0);
    CHECK(capture.record().seconds == doctest::Approx(0.5));
  }
}

TEST_CASE("mock: 429 carries Retry-After; reset names the mock") {
  MockFixture f;
  f.Add(Mock("m"));
  Capture limited;
  f.CallAndRun(limited, "m", Ask("hi [[mock:fault=429]] [[mock:retry_after=3]]"));
  CHECK(limited.status().kind() == ErrorKind::kRateLimited);
  CHECK(limited.status().retry_after() == doctest::Approx(3));
  CHECK(limited.status().message().find("HTTP 429") != std::string::npos);

  Capture reset;
  f.CallAndRun(reset, "m", Ask("hi [[mock:fault=reset]]"));
  CHECK(reset.status().message() == "provider 'm': connection reset by the mock");
}

TEST_CASE("mock: times=N fails the first N calls only") {
  MockFixture f;
  f.Add(Mock("m"));
  for (int i = 0; i < 3; ++i) {
    CAPTURE(i);
    Capture capture;
    f.CallAndRun(capture, "m", Ask("hi [[mock:fault=503]] [[mock:times=2]]"));
    CHECK(capture.result().ok() == (i == 2));
  }
}

TEST_CASE("mock: tool calls") {
  MockFixture f;
  f.Add(Mock("m"));
  ChatRequest request = Ask("weather?");
  request.tools.push_back({"weather", "Weather for a city",
                           R"({"type":"object","properties":{"city":{"type":"string"}},)"
                           R"("required":["city"]})"});
  Capture capture;
  f.CallAndRun(capture, "m", request);
  REQUIRE(capture.result().ok());
  REQUIRE(capture.result()->tool_calls.size() == 1);
  CHECK(capture.result()->tool_calls[0].name == "weather");
  CHECK(capture.result()->finish_reason == "tool_calls");
  CHECK(capture.result()->message_json.find("\"tool_calls\"") != std::string::npos);
}

TEST_CASE("mock: JSON output") {
  MockFixture f;
  f.Add(Mock("m"));

  SUBCASE("json: a JSON reply passes") {
    ChatRequest request = Ask("hi");
    request.output = OutputMode::kJson;
    Capture capture;
    f.CallAndRun(capture, "m", request);
    REQUIRE(capture.result().ok());
    CHECK(capture.result()->text == R"({"echo":"hi"})");
  }
  SUBCASE("json: a reply that is not JSON fails kTransient; its tokens are recorded") {
    ChatRequest request = Ask("hi [[mock:reply=not json at all]] [[mock:tokens=10,20]]");
    request.output = OutputMode::kJson;
    Capture capture;
    f.CallAndRun(capture, "m", request);
    CHECK(capture.status().kind() == ErrorKind::kTransient);
    CHECK(capture.status().message().find("output is not valid JSON") != std::string::npos);
    CHECK(capture.record().usage.prompt_tokens == 10);
    CHECK(capture.record().usage.completion_tokens == 20);
  }
  SUBCASE("schema: the mock's value satisfies the schema") {
    ChatRequest request = Ask("hi");
    request.output = OutputMode::kSchema;
    request.schema_json =
        R"({"type":"object","properties":{"answer":{"type":"string"}},"required":["answer"]})";
    Capture capture;
    f.CallAndRun(capture, "m", request);
    REQUIRE(capture.result().ok());
    CHECK(CheckJsonOutput(capture.result()->text, request.schema_json).ok());
  }
  SUBCASE("schema: a value that does not match fails kTransient") {
    ChatRequest request = Ask(R"(hi [[mock:reply={"other":1}]])");
    request.output = OutputMode::kSchema;
    request.schema_json = R"({"type":"object","required":["answer"]})";
    Capture capture;
    f.CallAndRun(capture, "m", request);
    CHECK(capture.status().kind() == ErrorKind::kTransient);
    CHECK(capture.status().message().find("does not match the schema: required") !=
          std::string::npos);
    CHECK(capture.record().usage.tokens() > 0);
  }
}

TEST_CASE("mock: max_concurrency queues calls at the gate") {
  MockFixture f;
  ProviderConfig config = Mock("m", 1);
  config.max_concurrency = 1;
  f.Add(config);
  Capture first;
  Capture second;
  f.client.Call("m", Ask("one"), nullptr, 0, first.Done());
  f.client.Call("m", Ask("two"), nullptr, 0, second.Done());
  f.clock.Advance(1);
  REQUIRE(first.done());
  CHECK_FALSE(second.done());
  f.clock.Advance(1);
  REQUIRE(second.done());
  CHECK(second.result().ok());
  CHECK(second.record().queued == doctest::Approx(1));
  CHECK(second.record().seconds == doctest::Approx(2));
}

TEST_CASE("CheckJsonOutput") {
  SUBCASE("whitespace and fences are stripped; the result is compact") {
    CHECK(CheckJsonOutput("  {\"a\": [1, 2]}\n", "").value() == R"({"a":[1,2]})");
    CHECK(CheckJsonOutput("```json\n{\"a\": 1}\n```", "").value() == R"({"a":1})");
    CHECK(CheckJsonOutput("\n```\n[true]\n```\n", "").value() == "[true]");
    CHECK(CheckJsonOutput("42", "").value() == "42");
  }
  SUBCASE("not JSON") {
    Result<std::string> r = CheckJsonOutput("{\"a\": }", "");
    CHECK(r.status().kind() == ErrorKind::kTransient);
    CHECK(r.status().message().find("output is not valid JSON: ") == 0);
    CHECK(r.status().message().find("at offset 6") != std::string::npos);
    CHECK(CheckJsonOutput("", "").status().kind() == ErrorKind::kTransient);
    CHECK(CheckJsonOutput("{} trailing", "").status().kind() == ErrorKind::kTransient);
  }
  SUBCASE("schema") {
    const std::string schema = R"({"type":"object","required":["n"],
      "properties":{"n":{"type":"integer","minimum":1},
                    "tags":{"type":"array","items":{"type":"string"}}}})";
    CHECK(CheckJsonOutput(R"({"n": 3, "tags": ["a"]})", schema).ok());
    Result<std::string> missing = CheckJsonOutput(R"({"tags": []})", schema);
    CHECK(missing.status().kind() == ErrorKind::kTransient);
    CHECK(missing.status().message().find("output does not match the schema: required") == 0);
    Result<std::string> bad_item = CheckJsonOutput(R"({"n": 1, "tags": ["a", 2]})", schema);
    CHECK(bad_item.status().message() == "output does not match the schema: type at /tags/1");
    CHECK(CheckJsonOutput(R"({"n": 0})", schema).status().message().find("minimum at /n") !=
          std::string::npos);
  }
  SUBCASE("nesting deeper than keel.json reads fails transient, however deep") {
    const std::string ok = std::string(200, '[') + std::string(200, ']');
    CHECK(CheckJsonOutput(ok, "").ok());
    const std::string deep = std::string(300, '[') + std::string(300, ']');
    Result<std::string> r = CheckJsonOutput(deep, "");
    CHECK(r.status().kind() == ErrorKind::kTransient);
    CHECK(r.status().message() ==
          "output is not valid JSON: invalid JSON at offset 200: nested deeper than 200 levels");
    const std::string huge = std::string(100000, '[') + std::string(100000, ']');
    CHECK(CheckJsonOutput("```json\n" + huge + "\n```", R"({"type":"array"})")
              .status()
              .message()
              .find("nested deeper than 200 levels") != std::string::npos);
  }
  SUBCASE("a schema that is not JSON is a permanent failure") {
    CHECK(CheckJsonOutput("{}", "{oops").status().kind() == ErrorKind::kPermanent);
  }
}

}  // namespace
}  // namespace keel
