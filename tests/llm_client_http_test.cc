// LlmClient with HTTP providers (OpenAI and Anthropic wire formats) against
// an in-process server, through the real HttpLoop: round trips, status
// mapping, key handling and transport failures.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "engine/mutex.h"
#include "nodes/llm_client.h"
#include "tests/llm_client_support.h"

namespace keel {
namespace {

using testing::Ask;
using testing::Capture;

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

// An HTTP server on 127.0.0.1 (cpp-httplib) answering by path from
// Answer(); the requests it saw are kept for the test. seen() may be called
// from any thread; mu_ guards seen_.
class TestServer {
 public:
  TestServer() {
    server_.Post(".*",
                 [this](const httplib::Request& req, httplib::Response& res) { Handle(req, res); });
    port_ = server_.bind_to_any_port("127.0.0.1");
    REQUIRE(port_ > 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // stop() only acts on a server that is listening.
    for (int i = 0; i < 10000 && !server_.is_running(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    REQUIRE(server_.is_running());
  }
  ~TestServer() {
    server_.stop();
    thread_.join();
  }

  std::string Url(const std::string& prefix) const {
    return "http://127.0.0.1:" + std::to_string(port_) + prefix;
  }
  std::vector<SeenRequest> seen() {
    MutexLock lock(&mu_);
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

  void Handle(const httplib::Request& http, httplib::Response& res) {
    SeenRequest req;
    req.path = http.path;
    req.body = http.body;
    for (const auto& [name, value] : http.headers) {
      std::string lower = name;
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      req.headers[lower] = value;
    }
    {
      MutexLock lock(&mu_);
      seen_.push_back(req);
    }
    CannedReply reply = Answer(req);
    res.status = reply.status;
    if (!reply.retry_after.empty()) res.set_header("Retry-After", reply.retry_after);
    res.set_content(reply.body, "application/json");
  }

  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  Mutex mu_;
  std::vector<SeenRequest> seen_ GUARDED_BY(mu_);
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

TEST_CASE("http: error statuses map to kinds, with the server's message" * doctest::timeout(60)) {
  struct Case {
    const char* provider;
    const char* kind;
    const char* path;
    ErrorKind expected;
    const char* message;
    int status;
  };
  const Case cases[] = {
      {"fast", "openai", "/limited", ErrorKind::kRateLimited,
       "provider 'fast': HTTP 429: Rate limit reached", 429},
      {"fast", "openai", "/broken", ErrorKind::kTransient,
       "provider 'fast': HTTP 500: internal error", 500},
      // The key the server echoes back is redacted.
      {"claude", "anthropic", "/denied", ErrorKind::kPermanent,
       "provider 'claude': HTTP 401: invalid x-api-key: [redacted]", 401},
  };
  for (const Case& c : cases) {
    CAPTURE(c.path);
    HttpFixture f;
    f.Add(c.provider, c.kind, c.path);
    Capture capture;
    f.CallAndWait(capture, c.provider);
    CHECK(capture.status().kind() == c.expected);
    CHECK(capture.status().message() == c.message);
    CHECK(capture.record().http_status == c.status);
    if (c.status == 429) CHECK(capture.status().retry_after() == doctest::Approx(2));
  }
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

TEST_CASE("http: a key is sent without surrounding whitespace" * doctest::timeout(60)) {
  HttpFixture f;
  f.Add("fast", "openai", "/v1");
  setenv(kKeyEnv, (std::string("  ") + kKey + "\r\n").c_str(), 1);
  Capture capture;
  f.CallAndWait(capture, "fast");
  REQUIRE(capture.result().ok());
  std::vector<SeenRequest> seen = f.server.seen();
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].Header("authorization") == std::string("Bearer ") + kKey);
}

TEST_CASE("http: a key with a control character inside is refused, unsent and unshown" *
          doctest::timeout(60)) {
  for (const char* key : {"sk-A\r\nX-Inj: 1", "sk-A\nX-Inj: 1", "sk-\x01A", "sk-A\x7f"}) {
    CAPTURE(key);
    HttpFixture f;
    f.Add("fast", "openai", "/v1");
    setenv(kKeyEnv, key, 1);
    Capture capture;
    f.client.Call("fast", Ask("hi"), nullptr, 0, capture.Done());
    REQUIRE(capture.Wait());
    CHECK(capture.status().kind() == ErrorKind::kPermanent);
    CHECK(capture.status().message() ==
          std::string("provider 'fast': environment variable ") + kKeyEnv +
              " holds a key with a control character (such as a line break) inside it");
    CHECK(capture.status().message().find("sk-A") == std::string::npos);
    CHECK(f.server.seen().empty());
  }
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
