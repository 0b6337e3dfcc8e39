// keel-mock-llm over the wire: endpoints, every fault mode, latency, the
// request log, API keys, concurrency, signals and bad options. Drives the
// real binary (MOCK_LLM_BIN) with httplib::Client.
#include <doctest/doctest.h>
#include <httplib.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/files.h"
#include "tests/support/json.h"
#include "tests/support/mock_llm_server.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"

namespace keel::testing {
namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

// One keel-mock-llm process on an ephemeral port (tests/support), with an
// HTTP client and waits on its request log by count and by id.
class MockLlm : public MockLlmServer {
 public:
  explicit MockLlm(std::vector<std::string> args) : MockLlmServer(MOCK_LLM_BIN, std::move(args)) {}

  std::unique_ptr<httplib::Client> Client(std::chrono::milliseconds read_timeout = 10s) const {
    auto client = std::make_unique<httplib::Client>("127.0.0.1", port());
    client->set_read_timeout(read_timeout);
    return client;
  }

  // GET /log once it holds `n` entries (a request is logged when it ends,
  // just after its client has the answer), waiting up to 10 s.
  Json WaitForLog(size_t n) const {
    return MockLlmServer::WaitForLog([n](const Json& log) { return log.Size() >= n; }, 10s);
  }

  // The log entry with this id, waiting up to 10 s for it; null when it never came.
  Json WaitForEntry(int64_t id) const;
};

std::string Quote(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string OpenAIRequest(const std::string& user) {
  return R"({"model":"gpt-mock","messages":[{"role":"user","content":)" + Quote(user) + "}]}";
}

std::string AnthropicRequest(const std::string& user) {
  return R"({"model":"claude-mock","max_tokens":64,"messages":[{"role":"user","content":)" +
         Quote(user) + "}]}";
}

httplib::Result Chat(httplib::Client& client, const std::string& user,
                     const httplib::Headers& headers = {}) {
  return client.Post("/v1/chat/completions", headers, OpenAIRequest(user), "application/json");
}

// The entry of request `id` in a log array (entries are in the order the
// requests ended), or null.
Json Entry(const Json& log, int64_t id) {
  for (size_t i = 0; i < log.Size(); ++i) {
    if (log[i]["id"].Int() == id) return log[i];
  }
  return Json::Null();
}

// The log file's lines as one JSON array.
Json FileLog(const std::string& text) {
  std::string array = "[";
  size_t start = 0;
  for (size_t end; (end = text.find('\n', start)) != std::string::npos; start = end + 1) {
    array += (array.size() > 1 ? "," : "") + text.substr(start, end - start);
  }
  return Json::Parse(array + "]");
}

Json MockLlm::WaitForEntry(int64_t id) const {
  return Entry(
      MockLlmServer::WaitForLog([id](const Json& log) { return !Entry(log, id).IsNull(); }, 10s),
      id);
}

bool IsJson(const std::string& text) {
  try {
    Json::Parse(text);
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

double MillisSince(SteadyClock::time_point start) {
  return std::chrono::duration<double, std::milli>(SteadyClock::now() - start).count();
}

TEST_CASE("answers both dialects, with and without /v1, and the side endpoints" *
          doctest::timeout(60)) {
  MockLlm mock({});
  auto client = mock.Client();
  for (const char* path : {"/v1/chat/completions", "/chat/completions"}) {
    auto res = client->Post(path, OpenAIRequest("hello"), "application/json");
    REQUIRE(res);
    CHECK(res->status == 200);
    CHECK(res->get_header_value("Content-Type") == "application/json");
    Json body = Json::Parse(res->body);
    CHECK(body["object"].Str() == "chat.completion");
    CHECK(body["model"].Str() == "gpt-mock");
    CHECK(body["choices"][0]["message"]["content"].Str() == "echo: hello");
  }
  for (const char* path : {"/v1/messages", "/messages"}) {
    auto res = client->Post(path, AnthropicRequest("hi"), "application/json");
    REQUIRE(res);
    CHECK(res->status == 200);
    Json body = Json::Parse(res->body);
    CHECK(body["type"].Str() == "message");
    CHECK(body["content"][0]["text"].Str() == "echo: hi");
  }
  auto bad = client->Post("/v1/chat/completions", "{nope", "application/json");
  REQUIRE(bad);
  CHECK(bad->status == 400);
  CHECK(Json::Parse(bad->body)["error"]["message"].Str().find("not JSON") != std::string::npos);

  auto models = client->Get("/v1/models");
  REQUIRE(models);
  CHECK(models->status == 200);
  CHECK(Json::Parse(models->body)["data"][0]["id"].Str() == "mock");
  Json log = mock.WaitForLog(5);
  REQUIRE(log.Size() == 5);  // the chat requests only
  auto health = client->Get("/healthz");
  REQUIRE(health);
  CHECK(health->status == 200);
  CHECK(Json::Parse(health->body)["requests"].Int() == 5);
  CHECK(Json::Parse(health->body)["in_flight"].Int() == 0);
  CHECK(Entry(log, 1)["path"].Str() == "/v1/chat/completions");
  CHECK(Entry(log, 1)["model"].Str() == "gpt-mock");
  CHECK(Entry(log, 1)["user"].Str() == "hello");
  CHECK(Entry(log, 1)["outcome"].Str() == "answered");
  CHECK(Entry(log, 1)["status"].Int() == 200);
  CHECK(Entry(log, 1)["fault"].Str() == "");
  CHECK(Entry(log, 4)["path"].Str() == "/messages");
  CHECK(Entry(log, 5)["status"].Int() == 400);
}

TEST_CASE("directive faults over the wire" * doctest::timeout(60)) {
  MockLlm mock({});
  auto client = mock.Client();
  for (int status : {500, 502, 503, 529, 400, 401, 403, 404}) {
    CAPTURE(status);
    auto res = Chat(*client, "[[mock:fault=" + std::to_string(status) + "]] x");
    REQUIRE(res);
    CHECK(res->status == status);
    CHECK(Json::Parse(res->body)["error"]["message"].IsString());
    CHECK(!res->has_header("Retry-After"));
  }
  auto limited = Chat(*client, "[[mock:fault=429]] x");
  REQUIRE(limited);
  CHECK(limited->status == 429);
  CHECK(limited->get_header_value("Retry-After") == "1");
  limited = Chat(*client, "[[mock:fault=429]][[mock:retry_after=3]] x");
  REQUIRE(limited);
  CHECK(limited->get_header_value("Retry-After") == "3");
  CHECK(limited->get_header_value("retry-after-ms") == "3000");

  auto malformed = Chat(*client, "[[mock:fault=malformed]] x");
  REQUIRE(malformed);
  CHECK(malformed->status == 200);
  CHECK(!malformed->body.empty());
  CHECK(!IsJson(malformed->body));

  auto truncated = Chat(*mock.Client(), "[[mock:fault=truncated]] x");
  CHECK(!truncated);
  auto reset = Chat(*mock.Client(), "[[mock:fault=reset]] x");
  CHECK(!reset);

  auto flaky = [&] { return Chat(*client, "[[mock:fault=503]][[mock:times=2]] flaky"); };
  CHECK(flaky()->status == 503);
  CHECK(flaky()->status == 503);
  CHECK(flaky()->status == 200);

  Json log = mock.WaitForLog(16);
  bool saw_truncated = false;
  bool saw_reset = false;
  for (size_t i = 0; i < log.Size(); ++i) {
    saw_truncated |= log[i]["fault"].Str() == "truncated" && log[i]["outcome"].Str() == "truncated";
    saw_reset |= log[i]["fault"].Str() == "reset" && log[i]["outcome"].Str() == "reset";
  }
  CHECK(saw_truncated);
  CHECK(saw_reset);
}

TEST_CASE("a truncated body and a reset are transport errors to the client" *
          doctest::timeout(60)) {
  MockLlm mock({});
  auto truncated = Chat(*mock.Client(), "[[mock:fault=truncated]] x");
  REQUIRE(!truncated);
  CHECK(truncated.error() == httplib::Error::Read);
  auto reset = Chat(*mock.Client(), "[[mock:fault=reset]] x");
  REQUIRE(!reset);
  CHECK(reset.error() == httplib::Error::Read);
}

TEST_CASE("server-side fault rates" * doctest::timeout(120)) {
  struct Case {
    std::vector<std::string> args;
    int status;  // 0: a transport error
    std::string fault;
  };
  const Case cases[] = {
      {{"--error-rate", "1"}, 500, "500"},
      {{"--rate-limit-rate", "1", "--retry-after", "7"}, 429, "429"},
      {{"--malformed-rate", "1"}, 200, "malformed"},
      {{"--truncate-rate", "1"}, 0, "truncated"},
      {{"--reset-rate", "1"}, 0, "reset"},
      {{"--hang-rate", "1"}, 0, "hang"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.fault);
    MockLlm mock(c.args);
    auto res = Chat(*mock.Client(500ms), "hello");
    if (c.status == 0) {
      CHECK(!res);
    } else {
      REQUIRE(res);
      CHECK(res->status == c.status);
      CHECK(IsJson(res->body) == (c.fault != "malformed"));
      if (c.status == 429) CHECK(res->get_header_value("Retry-After") == "7");
    }
    Json entry = mock.WaitForEntry(1);
    CHECK(entry["fault"].Str() == c.fault);
    // A directive fault beats the server's.
    auto directed = Chat(*mock.Client(), "[[mock:fault=404]] x");
    REQUIRE(directed);
    CHECK(directed->status == 404);
  }
}

TEST_CASE("random faults repeat for the same seed" * doctest::timeout(60)) {
  auto statuses = [](const std::string& seed) {
    MockLlm mock({"--error-rate", "0.3", "--rate-limit-rate", "0.3", "--seed", seed});
    auto client = mock.Client();
    std::string seen;
    for (int i = 0; i < 30; ++i) seen += std::to_string(Chat(*client, "x")->status) + " ";
    return seen;
  };
  const std::string first = statuses("7");
  CHECK(first == statuses("7"));
  CHECK(first.find("200") != std::string::npos);
  CHECK(first.find("500") != std::string::npos);
  CHECK(first.find("429") != std::string::npos);
  CHECK(first != statuses("8"));
}

TEST_CASE("--fail-first N with --fail-mode" * doctest::timeout(60)) {
  MockLlm mock({"--fail-first", "2", "--fail-mode", "429", "--retry-after", "0.5"});
  auto client = mock.Client();
  auto first = Chat(*client, "x");
  REQUIRE(first);
  CHECK(first->status == 429);
  CHECK(first->get_header_value("Retry-After") == "0.5");
  CHECK(Chat(*client, "x")->status == 429);
  CHECK(Chat(*client, "x")->status == 200);
  CHECK(Chat(*client, "x")->status == 200);

  MockLlm default_mode({"--fail-first", "1"});
  CHECK(Chat(*default_mode.Client(), "x")->status == 500);
  CHECK(Chat(*default_mode.Client(), "x")->status == 200);
}

TEST_CASE("latency is respected" * doctest::timeout(60)) {
  MockLlm mock({"--latency", "300", "--jitter", "50"});
  auto client = mock.Client();
  auto start = SteadyClock::now();
  auto res = Chat(*client, "slow");
  REQUIRE(res);
  CHECK(res->status == 200);
  CHECK(MillisSince(start) >= 300);

  start = SteadyClock::now();
  res = Chat(*client, "[[mock:latency=200]] slower");
  REQUIRE(res);
  CHECK(MillisSince(start) >= 500);

  start = SteadyClock::now();
  res = Chat(*client, "[[mock:fault=503]] failing slowly");
  REQUIRE(res);
  CHECK(res->status == 503);
  CHECK(MillisSince(start) >= 300);

  Json log = mock.WaitForLog(3);
  REQUIRE(log.Size() == 3);
  CHECK(Entry(log, 1)["latency_ms"].Num() >= 300);
  CHECK(Entry(log, 1)["latency_ms"].Num() <= 350);
  CHECK(Entry(log, 1)["duration_ms"].Num() >= 300);
  CHECK(Entry(log, 2)["latency_ms"].Num() >= 500);
}

TEST_CASE("a client that gives up is seen closing the connection" * doctest::timeout(60)) {
  MockLlm mock({});
  SUBCASE("during a hang") {
    auto res = Chat(*mock.Client(300ms), "[[mock:fault=hang]] wait");
    CHECK(!res);
    Json entry = mock.WaitForEntry(1);
    CHECK(entry["outcome"].Str() == "client_closed");
    CHECK(entry["fault"].Str() == "hang");
  }
  SUBCASE("during a long latency") {
    auto res = Chat(*mock.Client(300ms), "[[mock:latency=600000]] wait");
    CHECK(!res);
    // Without noticing the close the server would wait ten minutes.
    Json entry = mock.WaitForEntry(1);
    CHECK(entry["outcome"].Str() == "client_closed");
    CHECK(entry["status"].Int() == 200);
  }
}

TEST_CASE("--require-key: 401 without the key, and the key is never logged" *
          doctest::timeout(60)) {
  TempDir dir;
  const std::string key = "sk-mock-secret-4711";
  const std::string log_path = dir.Path("requests.jsonl");
  MockLlm mock({"--require-key", key, "--log", log_path});
  auto client = mock.Client();

  auto none = Chat(*client, "x");
  REQUIRE(none);
  CHECK(none->status == 401);
  CHECK(Json::Parse(none->body)["error"]["code"].Str() == "invalid_api_key");
  auto wrong = Chat(*client, "x", {{"Authorization", "Bearer sk-wrong"}});
  REQUIRE(wrong);
  CHECK(wrong->status == 401);
  auto bearer = Chat(*client, "x", {{"Authorization", "Bearer " + key}});
  REQUIRE(bearer);
  CHECK(bearer->status == 200);
  auto anthropic =
      client->Post("/v1/messages", {{"x-api-key", key}}, AnthropicRequest("x"), "application/json");
  REQUIRE(anthropic);
  CHECK(anthropic->status == 200);

  Json log = mock.WaitForLog(4);
  REQUIRE(log.Size() == 4);
  CHECK(!Entry(log, 1)["auth"].Bool());
  CHECK(Entry(log, 2)["auth"].Bool());
  CHECK(Entry(log, 2)["status"].Int() == 401);
  CHECK(Entry(log, 3)["auth"].Bool());
  CHECK(Entry(log, 3)["status"].Int() == 200);
  CHECK(log.Dump().find(key) == std::string::npos);

  std::string lines;
  CHECK(WaitUntil(
      [&] {
        lines = ReadFile(log_path).value_or("");
        return CountLines(lines).size() == 4;
      },
      10s));
  CHECK(lines.find(key) == std::string::npos);
  CHECK(lines.find("sk-") == std::string::npos);
}

TEST_CASE("the log file has one JSON line per request with every field" * doctest::timeout(60)) {
  TempDir dir;
  const std::string log_path = dir.Path("requests.jsonl");
  MockLlm mock({"--log", log_path});
  auto client = mock.Client();
  const std::string long_user(300, 'a');
  Chat(*client, long_user);
  Chat(*client, "[[mock:fault=502]] broken");
  std::string text;
  REQUIRE(WaitUntil(
      [&] {
        text = ReadFile(log_path).value_or("");
        return CountLines(text).size() == 2;
      },
      10s));
  Json log = FileLog(text);
  Json first = Entry(log, 1);
  for (const char* field : {"id", "ts", "path", "protocol", "model", "user", "fault", "status",
                            "latency_ms", "outcome", "duration_ms", "auth"}) {
    CAPTURE(field);
    CHECK(!first[field].IsNull());
  }
  CHECK(first["id"].Int() == 1);
  CHECK(first["protocol"].Str() == "http/1.1");
  CHECK(first["ts"].Num() > 1.6e9);
  CHECK(first["user"].Str() == std::string(200, 'a'));
  Json second = Entry(log, 2);
  CHECK(second["fault"].Str() == "502");
  CHECK(second["status"].Int() == 502);
}

TEST_CASE("256 concurrent requests at 200 ms latency are all answered" * doctest::timeout(120)) {
  MockLlm mock({"--latency", "200"});
  constexpr int kRequests = 256;
  std::atomic<int> answered{0};
  std::atomic<int> too_fast{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kRequests; ++i) {
    threads.emplace_back([&, i] {
      auto client = mock.Client(60s);
      client->set_connection_timeout(60s);
      auto start = SteadyClock::now();
      auto res = Chat(*client, "request " + std::to_string(i));
      if (res && res->status == 200) ++answered;
      if (MillisSince(start) < 200) ++too_fast;
    });
  }
  for (auto& t : threads) t.join();
  CHECK(answered == kRequests);
  CHECK(too_fast == 0);
  CHECK(mock.WaitForLog(kRequests).Size() == kRequests);
}

TEST_CASE("SIGTERM stops the server cleanly and ends hangs" * doctest::timeout(60)) {
  TempDir dir;
  const std::string log_path = dir.Path("requests.jsonl");
  MockLlm mock({"--log", log_path});
  std::thread hanging([&] { Chat(*mock.Client(30s), "[[mock:fault=hang]] forever"); });
  REQUIRE(WaitUntil(
      [&] {
        auto res = mock.Client()->Get("/healthz");
        return res && Json::Parse(res->body)["in_flight"].Int() == 1;
      },
      10s));
  kill(mock.process().pid(), SIGTERM);
  ExitInfo info = mock.process().Wait(20s);
  hanging.join();
  CHECK_MESSAGE(info.exit_code == 0, info.Describe());
  std::string text = ReadFile(log_path).value_or("");
  REQUIRE(CountLines(text).size() == 1);
  Json entry = Json::Parse(text.substr(0, text.find('\n')));
  CHECK(entry["fault"].Str() == "hang");
  CHECK(entry["outcome"].Str() == "hang_closed");
}

TEST_CASE("bad options exit 2 naming the option" * doctest::timeout(60)) {
  struct Case {
    std::vector<std::string> args;
    std::string mentions;
  };
  const Case cases[] = {
      {{"--port", "70000"}, "--port"},
      {{"--error-rate", "1.5"}, "--error-rate"},
      {{"--error-rate", "0.6", "--hang-rate", "0.6"}, "--hang-rate"},
      {{"--fail-mode", "418"}, "--fail-mode"},
      {{"--latency", "-1"}, "--latency"},
      {{"--no-such-option"}, "--no-such-option"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.mentions);
    SpawnOptions options;
    options.args = c.args;
    ExitInfo info = RunProcess(MOCK_LLM_BIN, options, 10s);
    CHECK_MESSAGE(info.exit_code == 2, info.Describe());
    CHECK(info.err.find(c.mentions) != std::string::npos);
    CHECK(info.out.empty());
  }
}

}  // namespace
}  // namespace keel::testing
