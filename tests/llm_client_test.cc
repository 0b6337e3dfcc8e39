#include "nodes/llm_client.h"

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "engine/fake_clock.h"

namespace keel {
namespace {

// What one call's `done` received. Written on the thread that runs `done`,
// read by the test thread; one mutex guards it.
class Capture {
 public:
  LlmDone Done() {
    return [this](Result<ChatResponse> result, LlmCallRecord record) {
      std::lock_guard<std::mutex> lock(mu_);
      ++calls_;
      result_.emplace(std::move(result));
      record_ = std::move(record);
      cv_.notify_all();
    };
  }
  bool done() {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_ > 0;
  }
  // Waits (generously: no timing is asserted) for a call that runs on other threads.
  bool Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(20), [this] { return calls_ > 0; });
  }
  int calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }
  const Result<ChatResponse>& result() {
    std::lock_guard<std::mutex> lock(mu_);
    REQUIRE(result_.has_value());
    return *result_;
  }
  const Status& status() { return result().status(); }
  LlmCallRecord record() {
    std::lock_guard<std::mutex> lock(mu_);
    return record_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int calls_ = 0;
  std::optional<Result<ChatResponse>> result_;
  LlmCallRecord record_;
};

ChatRequest Ask(const std::string& user_text) {
  ChatRequest request;
  std::string escaped;
  for (char c : user_text) {
    if (c == '"' || c == '\\') escaped += '\\';
    escaped += c;
  }
  request.messages_json = R"([{"role":"user","content":")" + escaped + "\"}]";
  return request;
}

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
  SUBCASE("a schema that is not JSON is a permanent failure") {
    CHECK(CheckJsonOutput("{}", "{oops").status().kind() == ErrorKind::kPermanent);
  }
}

// HTTP providers against an in-process server, with the real HttpLoop.

constexpr const char* kKeyEnv = "KEEL_LLM_CLIENT_TEST_KEY";
constexpr const char* kKey = "sk-live-TOPSECRET-42";

// One HTTP request as the test server read it; header names lower-cased.
struct SeenRequest {
  std::string path;
  std::map<std::string, std::string> headers;
  std::string body;

  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "<absent>" : it->second;
  }
};

struct CannedReply {
  int status = 200;
  std::string retry_after;  // "" for none
  std::string body;
};

// A minimal HTTP/1.1 server on 127.0.0.1: one thread serves one connection
// at a time, answers by path from Answer() and closes the connection.
// Enough for curl's POSTs; the requests it saw are kept for the test.
// seen() may be called from any thread; mu_ guards seen_.
class TestServer {
 public:
  TestServer() {
    listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(listen_fd_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(listen(listen_fd_, 16) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~TestServer() {
    shutdown(listen_fd_, SHUT_RDWR);  // wakes accept()
    thread_.join();
    close(listen_fd_);
  }

  std::string Url(const std::string& prefix) const {
    return "http://127.0.0.1:" + std::to_string(port_) + prefix;
  }
  std::vector<SeenRequest> seen() {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_;
  }

 private:
  static CannedReply Answer(const SeenRequest& req) {
    if (req.path == "/v1/chat/completions") {
      return {200, "", R"({"id":"c","model":"gpt-test","choices":[{"index":0,
        "finish_reason":"stop","message":{"role":"assistant","content":"hello from openai"}}],
        "usage":{"prompt_tokens":11,"completion_tokens":4}})"};
    }
    if (req.path == "/v1/messages") {
      return {200, "", R"({"id":"m","type":"message","role":"assistant","model":"claude-test",
        "content":[{"type":"text","text":"hello from anthropic"}],"stop_reason":"end_turn",
        "usage":{"input_tokens":21,"output_tokens":6}})"};
    }
    if (req.path == "/limited/chat/completions") {
      return {429, "2", R"({"error":{"message":"Rate limit reached","type":"requests"}})"};
    }
    if (req.path == "/broken/chat/completions") return {500, "", "internal error"};
    if (req.path == "/denied/messages") {
      return {401, "",
              R"({"type":"error","error":{"type":"authentication_error",)"
              R"("message":"invalid x-api-key: )" +
                  req.Header("x-api-key") + "\"}}"};
    }
    return {404, "", "no such path"};
  }

  void Serve() {
    for (;;) {
      int fd = accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) return;
      Handle(fd);
      close(fd);
    }
  }

  void Handle(int fd) {
    std::string data;
    size_t header_end;
    while ((header_end = data.find("\r\n\r\n")) == std::string::npos) {
      if (!ReadSome(fd, &data)) return;
    }
    SeenRequest req = ParseHead(data.substr(0, header_end));
    if (req.Header("expect") == "100-continue") WriteAll(fd, "HTTP/1.1 100 Continue\r\n\r\n");
    size_t length = std::stoul(req.headers.count("content-length") ? req.headers["content-length"]
                                                                   : std::string("0"));
    req.body = data.substr(header_end + 4);
    while (req.body.size() < length) {
      if (!ReadSome(fd, &req.body)) return;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      seen_.push_back(req);
    }
    CannedReply reply = Answer(req);
    std::string out = "HTTP/1.1 " + std::to_string(reply.status) + " X\r\n" +
                      "Content-Type: application/json\r\nConnection: close\r\n" +
                      "Content-Length: " + std::to_string(reply.body.size()) + "\r\n";
    if (!reply.retry_after.empty()) out += "Retry-After: " + reply.retry_after + "\r\n";
    WriteAll(fd, out + "\r\n" + reply.body);
  }

  static SeenRequest ParseHead(const std::string& head) {
    SeenRequest req;
    std::istringstream lines(head);
    std::string line;
    std::getline(lines, line);
    size_t path_start = line.find(' ') + 1;
    req.path = line.substr(path_start, line.find(' ', path_start) - path_start);
    while (std::getline(lines, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string name = line.substr(0, colon);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      size_t value = line.find_first_not_of(' ', colon + 1);
      req.headers[name] = value == std::string::npos ? "" : line.substr(value);
    }
    return req;
  }

  static bool ReadSome(int fd, std::string* out) {
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) return false;
    out->append(buf, static_cast<size_t>(n));
    return true;
  }

  static void WriteAll(int fd, const std::string& data) {
    size_t done = 0;
    while (done < data.size()) {
      ssize_t n = write(fd, data.data() + done, data.size() - done);
      if (n <= 0) return;
      done += static_cast<size_t>(n);
    }
  }

  int listen_fd_ = -1;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::vector<SeenRequest> seen_;  // guarded by mu_
};

// A loopback port nothing listens on (it was free a moment ago).
int UnusedPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  close(fd);
  return ntohs(addr.sin_port);
}

struct HttpFixture {
  HttpFixture() { setenv(kKeyEnv, kKey, 1); }
  ~HttpFixture() { unsetenv(kKeyEnv); }

  void Add(const std::string& name, const std::string& kind, const std::string& prefix) {
    ProviderConfig config;
    config.name = name;
    config.kind = kind;
    config.base_url = server.Url(prefix);
    config.model = kind + "-default";
    config.api_key_env = kKeyEnv;
    config.input_price = 1;
    config.output_price = 1;
    REQUIRE(client.AddProvider(std::move(config)).ok());
  }
  // Calls `provider` and waits for the answer.
  void CallAndWait(Capture& capture, const std::string& provider) {
    client.Call(provider, Ask("hi"), nullptr, SystemClock()->Now() + 30, capture.Done());
    REQUIRE(capture.Wait());
    CHECK(capture.status().message().find(kKey) == std::string::npos);
    CHECK(capture.record().outcome.message().find(kKey) == std::string::npos);
  }

  TestServer server;
  LlmClient client{SystemClock(), std::make_shared<HttpLoop>(SystemClock())};
};

TEST_CASE("http: OpenAI round trip" * doctest::timeout(60)) {
  HttpFixture f;
  f.Add("fast", "openai", "/v1");
  Capture capture;
  f.CallAndWait(capture, "fast");
  REQUIRE(capture.result().ok());
  CHECK(capture.result()->text == "hello from openai");
  CHECK(capture.result()->model == "gpt-test");
  LlmCallRecord record = capture.record();
  CHECK(record.http_status == 200);
  CHECK(record.model == "gpt-test");
  CHECK(record.usage.prompt_tokens == 11);
  CHECK(record.usage.completion_tokens == 4);
  CHECK(record.cost == doctest::Approx(15 / 1e6));
  CHECK(record.seconds > 0);
  std::vector<SeenRequest> seen = f.server.seen();
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].Header("authorization") == std::string("Bearer ") + kKey);
  CHECK(seen[0].Header("content-type") == "application/json");
  CHECK(seen[0].body.find("\"model\":\"openai-default\"") != std::string::npos);
  CHECK(seen[0].body.find(kKey) == std::string::npos);
}

TEST_CASE("http: Anthropic round trip" * doctest::timeout(60)) {
  HttpFixture f;
  f.Add("claude", "anthropic", "/v1");
  Capture capture;
  f.CallAndWait(capture, "claude");
  REQUIRE(capture.result().ok());
  CHECK(capture.result()->text == "hello from anthropic");
  CHECK(capture.result()->finish_reason == "stop");
  CHECK(capture.record().usage.prompt_tokens == 21);
  CHECK(capture.record().usage.completion_tokens == 6);
  std::vector<SeenRequest> seen = f.server.seen();
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].Header("x-api-key") == kKey);
  CHECK(seen[0].Header("anthropic-version") == "2023-06-01");
  CHECK(seen[0].Header("authorization") == "<absent>");
  CHECK(seen[0].body.find("\"max_tokens\":1024") != std::string::npos);
}

TEST_CASE("http: 429 with Retry-After is rate limited" * doctest::timeout(60)) {
  HttpFixture f;
  f.Add("fast", "openai", "/limited");
  Capture capture;
  f.CallAndWait(capture, "fast");
  CHECK(capture.status().kind() == ErrorKind::kRateLimited);
  CHECK(capture.status().retry_after() == doctest::Approx(2));
  CHECK(capture.status().message() == "provider 'fast': HTTP 429: Rate limit reached");
  CHECK(capture.record().http_status == 429);
}

TEST_CASE("http: 500 is transient" * doctest::timeout(60)) {
  HttpFixture f;
  f.Add("fast", "openai", "/broken");
  Capture capture;
  f.CallAndWait(capture, "fast");
  CHECK(capture.status().kind() == ErrorKind::kTransient);
  CHECK(capture.status().message() == "provider 'fast': HTTP 500: internal error");
  CHECK(capture.record().http_status == 500);
}

TEST_CASE("http: 401 is permanent and the echoed key is redacted" * doctest::timeout(60)) {
  HttpFixture f;
  f.Add("claude", "anthropic", "/denied");
  Capture capture;
  f.CallAndWait(capture, "claude");
  CHECK(capture.status().kind() == ErrorKind::kPermanent);
  CHECK(capture.status().message() == "provider 'claude': HTTP 401: invalid x-api-key: [redacted]");
}

TEST_CASE("http: a missing key variable fails before any request" * doctest::timeout(60)) {
  HttpFixture f;
  f.Add("fast", "openai", "/v1");
  unsetenv(kKeyEnv);
  Capture capture;
  f.client.Call("fast", Ask("hi"), nullptr, 0, capture.Done());
  REQUIRE(capture.Wait());
  CHECK(capture.status().kind() == ErrorKind::kPermanent);
  CHECK(capture.status().message() ==
        std::string("provider 'fast': environment variable ") + kKeyEnv + " is not set");
  CHECK(f.server.seen().empty());
}

TEST_CASE("http: a refused connection keeps its transport kind" * doctest::timeout(60)) {
  HttpFixture f;
  ProviderConfig config;
  config.name = "gone";
  config.kind = "openai";
  config.base_url = "http://127.0.0.1:" + std::to_string(UnusedPort()) + "/v1";
  REQUIRE(f.client.AddProvider(config).ok());
  Capture capture;
  f.client.Call("gone", Ask("hi"), nullptr, SystemClock()->Now() + 30, capture.Done());
  REQUIRE(capture.Wait());
  CHECK(capture.status().kind() == ErrorKind::kTransient);
  CHECK(capture.record().http_status == 0);
}

}  // namespace
}  // namespace keel
