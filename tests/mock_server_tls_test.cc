// keel-mock-llm over HTTPS, with libcurl as the client: HTTP/2 (chosen by
// ALPN) and HTTP/1.1 over TLS, multiplexing on one connection, faults that
// act on one stream and leave its siblings alone, client aborts, API keys, a
// clean stop, and the TLS options.
#include <curl/curl.h>
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/curl_transfer.h"
#include "tests/support/files.h"
#include "tests/support/json.h"
#include "tests/support/mock_llm_server.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"

namespace keel::testing {
namespace {

using namespace std::chrono_literals;
using Transport = MockLlmServer::Transport;

// One keel-mock-llm process serving HTTPS with a self-signed certificate.
// Use from one thread.
class TlsMock : public MockLlmServer {
 public:
  explicit TlsMock(std::vector<std::string> args)
      : MockLlmServer(MOCK_LLM_BIN, std::move(args), Transport::kHttps) {}

  // The log entry with this id, waiting up to 10 s for it; null when it never came.
  Json WaitForEntry(int64_t id) const {
    Json log = WaitForLog(
        [id](const Json& l) {
          for (size_t i = 0; i < l.Size(); ++i) {
            if (l[i]["id"].Int() == id) return true;
          }
          return false;
        },
        10s);
    for (size_t i = 0; i < log.Size(); ++i) {
      if (log[i]["id"].Int() == id) return log[i];
    }
    return Json::Null();
  }
};

std::string Quote(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

bool IsJson(const std::string& text) {
  try {
    Json::Parse(text);
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

std::unique_ptr<Transfer> Chat(const MockLlmServer& mock, const std::string& user,
                               long http_version = CURL_HTTP_VERSION_2TLS) {
  return std::make_unique<Transfer>(
      mock, "/v1/chat/completions",
      R"({"model":"gpt-mock","messages":[{"role":"user","content":)" + Quote(user) + "}]}",
      http_version);
}

// One request on its own multi handle, run to its end.
void RunOne(Transfer* t) {
  Multi multi;
  multi.Add(t);
  REQUIRE(multi.Run(30s));
}

int64_t InFlight(const MockLlmServer& mock) {
  Transfer health(mock, "/healthz", "");
  RunOne(&health);
  return health.Status() == 200 ? Json::Parse(health.body())["in_flight"].Int() : -1;
}

TEST_CASE("answers over HTTP/2, over HTTP/1.1 on TLS, and without ALPN" * doctest::timeout(60)) {
  TlsMock mock({});
  auto h2 = Chat(mock, "hello");
  RunOne(h2.get());
  CHECK(h2->result == CURLE_OK);
  CHECK(h2->HttpVersion() == CURL_HTTP_VERSION_2_0);
  CHECK(h2->Status() == 200);
  CHECK(h2->Header("content-type") == "application/json");
  CHECK(h2->Header("x-mock-request-id") == "1");
  CHECK(Json::Parse(h2->body())["choices"][0]["message"]["content"].Str() == "echo: hello");

  auto h1 = Chat(mock, "hi", CURL_HTTP_VERSION_1_1);
  RunOne(h1.get());
  CHECK(h1->result == CURLE_OK);
  CHECK(h1->HttpVersion() == CURL_HTTP_VERSION_1_1);
  CHECK(Json::Parse(h1->body())["choices"][0]["message"]["content"].Str() == "echo: hi");

  auto no_alpn = Chat(mock, "no alpn");
  curl_easy_setopt(no_alpn->easy(), CURLOPT_SSL_ENABLE_ALPN, 0L);
  RunOne(no_alpn.get());
  CHECK(no_alpn->result == CURLE_OK);
  CHECK(no_alpn->HttpVersion() == CURL_HTTP_VERSION_1_1);

  Transfer anthropic(
      mock, "/v1/messages",
      R"({"model":"claude-mock","max_tokens":9,"messages":[{"role":"user","content":"yo"}]})");
  RunOne(&anthropic);
  CHECK(anthropic.Status() == 200);
  CHECK(Json::Parse(anthropic.body())["content"][0]["text"].Str() == "echo: yo");

  Transfer models(mock, "/v1/models", "");
  Transfer missing(mock, "/nowhere", "");
  Transfer get_chat(mock, "/v1/chat/completions", "");
  for (Transfer* t : {&models, &missing, &get_chat}) RunOne(t);
  CHECK(models.Status() == 200);
  CHECK(Json::Parse(models.body())["data"][0]["id"].Str() == "mock");
  CHECK(missing.Status() == 404);
  CHECK(get_chat.Status() == 405);
  CHECK(Json::Parse(get_chat.body())["error"]["message"].IsString());

  Json log = mock.WaitForLog([](const Json& l) { return l.Size() >= 4; });
  REQUIRE(log.Size() == 4);
  CHECK(log[0]["protocol"].Str() == "h2");
  CHECK(log[0]["outcome"].Str() == "answered");
  CHECK(log[1]["protocol"].Str() == "http/1.1");
  CHECK(log[2]["protocol"].Str() == "http/1.1");
  CHECK(log[3]["protocol"].Str() == "h2");
  CHECK(log[3]["path"].Str() == "/v1/messages");
}

TEST_CASE("--no-http2 offers only http/1.1" * doctest::timeout(60)) {
  TlsMock mock({"--no-http2"});
  auto t = Chat(mock, "hello");
  RunOne(t.get());
  CHECK(t->result == CURLE_OK);
  CHECK(t->Status() == 200);
  CHECK(t->HttpVersion() == CURL_HTTP_VERSION_1_1);
  CHECK(mock.WaitForEntry(1)["protocol"].Str() == "http/1.1");
}

TEST_CASE("64 requests multiplexed on one HTTP/2 connection honour the latency" *
          doctest::timeout(60)) {
  TlsMock mock({"--latency", "200"});
  constexpr int kRequests = 64;
  std::vector<std::unique_ptr<Transfer>> transfers;
  Multi multi;
  for (int i = 0; i < kRequests; ++i) {
    transfers.push_back(Chat(mock, "request " + std::to_string(i)));
    multi.Add(transfers.back().get());
  }
  REQUIRE(multi.Run(30s));
  long connects = 0;
  for (const auto& t : transfers) {
    CHECK(t->result == CURLE_OK);
    CHECK(t->Status() == 200);
    CHECK(t->HttpVersion() == CURL_HTTP_VERSION_2_0);
    CHECK(t->Millis() >= 200);
    connects += t->Connects();
  }
  CHECK(connects == 1);
  Json log = mock.WaitForLog([](const Json& l) { return l.Size() >= kRequests; });
  REQUIRE(log.Size() == kRequests);
  for (size_t i = 0; i < log.Size(); ++i) {
    CHECK(log[i]["duration_ms"].Num() >= 200);
    CHECK(log[i]["protocol"].Str() == "h2");
  }
}

TEST_CASE("a fault acts on its HTTP/2 stream only" * doctest::timeout(120)) {
  struct Case {
    std::string mode;
    std::string outcome;  // in the log
  };
  const Case cases[] = {
      {"reset", "reset"},        {"truncated", "truncated"}, {"hang", "client_closed"},
      {"malformed", "answered"}, {"500", "answered"},        {"503", "answered"},
      {"429", "answered"},       {"401", "answered"},
  };
  TlsMock mock({});
  int64_t id = 0;
  for (const Case& c : cases) {
    CAPTURE(c.mode);
    // The sibling is still waiting when the faulty request fails.
    auto sibling = Chat(mock, "[[mock:latency=500]] sibling of " + c.mode);
    auto faulty = Chat(mock, "[[mock:fault=" + c.mode + "]] x");
    faulty->SetTimeout(250);  // what ends a hang
    Multi multi;
    multi.Add(sibling.get());
    multi.Add(faulty.get());
    REQUIRE(multi.Run(30s));
    id += 2;

    CHECK(sibling->result == CURLE_OK);
    CHECK(sibling->Status() == 200);
    CHECK(IsJson(sibling->body()));
    CHECK(sibling->LocalPort() == faulty->LocalPort());
    CHECK(sibling->Connects() + faulty->Connects() <= 1);
    if (c.mode == "reset") {
      CHECK((faulty->result == CURLE_HTTP2_STREAM || faulty->result == CURLE_HTTP2));
    } else if (c.mode == "truncated") {
      CHECK(faulty->result != CURLE_OK);
    } else if (c.mode == "hang") {
      CHECK(faulty->result == CURLE_OPERATION_TIMEDOUT);
    } else if (c.mode == "malformed") {
      CHECK(faulty->result == CURLE_OK);
      CHECK(faulty->Status() == 200);
      CHECK(!faulty->body().empty());
      CHECK(!IsJson(faulty->body()));
    } else {
      CHECK(faulty->result == CURLE_OK);
      CHECK(faulty->Status() == std::stoi(c.mode));
      CHECK(Json::Parse(faulty->body())["error"]["message"].IsString());
      CHECK(faulty->Header("retry-after") == (c.mode == "429" ? "1" : ""));
    }
    Json faulty_entry = mock.WaitForEntry(id);
    CHECK(faulty_entry["fault"].Str() == c.mode);
    CHECK(faulty_entry["outcome"].Str() == c.outcome);
    CHECK(mock.WaitForEntry(id - 1)["outcome"].Str() == "answered");
  }
}

TEST_CASE("faults over HTTP/1.1 on TLS" * doctest::timeout(60)) {
  TlsMock mock({});
  auto truncated = Chat(mock, "[[mock:fault=truncated]] x", CURL_HTTP_VERSION_1_1);
  auto reset = Chat(mock, "[[mock:fault=reset]] x", CURL_HTTP_VERSION_1_1);
  auto hang = Chat(mock, "[[mock:fault=hang]] x", CURL_HTTP_VERSION_1_1);
  hang->SetTimeout(300);
  for (Transfer* t : {truncated.get(), reset.get(), hang.get()}) RunOne(t);
  CHECK(truncated->result == CURLE_PARTIAL_FILE);
  CHECK(reset->result != CURLE_OK);
  CHECK(hang->result == CURLE_OPERATION_TIMEDOUT);
  CHECK(mock.WaitForEntry(1)["outcome"].Str() == "truncated");
  CHECK(mock.WaitForEntry(2)["outcome"].Str() == "reset");
  // The client's close is seen while the request hangs.
  CHECK(mock.WaitForEntry(3)["outcome"].Str() == "client_closed");
}

TEST_CASE("--fail-first over HTTP/2, then answers on the same connection" * doctest::timeout(60)) {
  TlsMock mock({"--fail-first", "2", "--fail-mode", "reset"});
  Multi multi;
  std::vector<std::unique_ptr<Transfer>> transfers;
  for (int i = 0; i < 3; ++i) {
    transfers.push_back(Chat(mock, "x"));
    multi.Add(transfers.back().get());
    REQUIRE(multi.Run(30s));
  }
  CHECK(transfers[0]->result != CURLE_OK);
  CHECK(transfers[1]->result != CURLE_OK);
  CHECK(transfers[2]->result == CURLE_OK);
  CHECK(transfers[2]->Connects() == 0);  // the resets left the connection up
}

TEST_CASE("a client giving up on an HTTP/2 stream is logged client_closed" * doctest::timeout(60)) {
  TlsMock mock({});
  SUBCASE("it resets the stream; its sibling goes on") {
    auto sibling = Chat(mock, "[[mock:latency=400]] sibling");
    auto aborted = Chat(mock, "[[mock:latency=600000]] abandoned");
    Multi multi;
    multi.Add(sibling.get());
    multi.Add(aborted.get());
    REQUIRE(multi.RunUntil([&] { return InFlight(mock) == 2; }, 10s));
    multi.Remove(aborted.get());  // curl sends RST_STREAM
    REQUIRE(multi.Run(30s));
    CHECK(sibling->result == CURLE_OK);
    CHECK(sibling->Status() == 200);
    // Without seeing the reset the server would wait ten minutes.
    Json entry = mock.WaitForEntry(2);
    CHECK(entry["outcome"].Str() == "client_closed");
    CHECK(entry["status"].Int() == 200);
  }
  SUBCASE("its process dies, closing the connection") {
    auto hanging = Chat(mock, "[[mock:fault=hang]] connection closed");
    const pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      curl_easy_perform(hanging->easy());
      _exit(0);
    }
    CHECK(WaitUntil([&] { return InFlight(mock) == 1; }, 10s));
    kill(child, SIGKILL);  // the kernel closes the socket: no RST_STREAM
    waitpid(child, nullptr, 0);
    Json entry = mock.WaitForEntry(1);
    CHECK(entry["outcome"].Str() == "client_closed");
    CHECK(entry["fault"].Str() == "hang");
  }
}

TEST_CASE("--require-key over HTTP/2" * doctest::timeout(60)) {
  const std::string key = "sk-mock-secret-4711";
  TlsMock mock({"--require-key", key});
  auto none = Chat(mock, "x");
  auto bearer = Chat(mock, "x");
  bearer->AddHeader("Authorization: Bearer " + key);
  auto api_key = Chat(mock, "x");
  api_key->AddHeader("x-api-key: " + key);
  auto wrong = Chat(mock, "x");
  wrong->AddHeader("x-api-key: sk-wrong");
  for (Transfer* t : {none.get(), bearer.get(), api_key.get(), wrong.get()}) RunOne(t);
  CHECK(none->Status() == 401);
  CHECK(Json::Parse(none->body())["error"]["code"].Str() == "invalid_api_key");
  CHECK(bearer->Status() == 200);
  CHECK(api_key->Status() == 200);
  CHECK(wrong->Status() == 401);
  Json log = mock.WaitForLog([](const Json& l) { return l.Size() >= 4; });
  REQUIRE(log.Size() == 4);
  CHECK(!log[0]["auth"].Bool());
  CHECK(log[1]["auth"].Bool());
  CHECK(log[3]["auth"].Bool());
  CHECK(log.Dump().find(key) == std::string::npos);
}

TEST_CASE("SIGTERM answers waits, closes HTTP/2 hangs and exits 0" * doctest::timeout(60)) {
  TempDir dir;
  const std::string log_path = dir.Path("requests.jsonl");
  TlsMock mock({"--log", log_path});
  auto waiting = Chat(mock, "[[mock:latency=600000]] waiting");
  auto hanging = Chat(mock, "[[mock:fault=hang]] forever");
  Multi multi;
  multi.Add(waiting.get());
  multi.Add(hanging.get());
  REQUIRE(multi.RunUntil([&] { return InFlight(mock) == 2; }, 10s));
  kill(mock.process().pid(), SIGTERM);
  REQUIRE(multi.Run(30s));
  ExitInfo info = mock.process().Wait(20s);
  CHECK_MESSAGE(info.exit_code == 0, info.Describe());
  CHECK(waiting->result == CURLE_OK);
  CHECK(waiting->Status() == 200);
  CHECK(hanging->result != CURLE_OK);
  const std::string text = ReadFile(log_path).value_or("");
  CHECK(text.find(R"("outcome":"hang_closed")") != std::string::npos);
  CHECK(text.find(R"("outcome":"answered")") != std::string::npos);
}

TEST_CASE("--tls-cert and --tls-key serve a certificate from files" * doctest::timeout(60)) {
  TempDir dir;
  SpawnOptions openssl;
  const std::string cert = dir.Path("cert.pem");
  const std::string key = dir.Path("key.pem");
  std::istringstream words(
      "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost "
      "-addext subjectAltName=IP:127.0.0.1");
  for (std::string word; words >> word;) openssl.args.push_back(word);
  openssl.args.insert(openssl.args.end(), {"-keyout", key, "-out", cert});
  ExitInfo made = RunProcess("/usr/bin/openssl", openssl, 30s);
  REQUIRE_MESSAGE(made.exit_code == 0, made.Describe());
  SpawnOptions options;
  options.args = {"--port", "0", "--tls-cert", cert, "--tls-key", key};
  Subprocess mock(MOCK_LLM_BIN, options);
  const std::string prefix = "listening on https://127.0.0.1:";
  REQUIRE(WaitUntil([&] { return mock.Stdout().find('\n') != std::string::npos; }, 10s));
  REQUIRE(mock.Stdout().rfind(prefix, 0) == 0);
  Transfer t(std::stoi(mock.Stdout().substr(prefix.size())), cert, "/healthz", "");
  RunOne(&t);
  CHECK(t.result == CURLE_OK);
  CHECK(t.Status() == 200);
  CHECK(t.HttpVersion() == CURL_HTTP_VERSION_2_0);
}

TEST_CASE("bad TLS options exit 2 naming the option" * doctest::timeout(60)) {
  TempDir dir;
  WriteFile(dir.Path("junk.pem"), "not a certificate\n");
  struct Case {
    std::vector<std::string> args;
    std::string mentions;
  };
  const Case cases[] = {
      {{"--tls-cert", dir.Path("missing.pem"), "--tls-key", dir.Path("junk.pem")}, "--tls-cert"},
      {{"--tls-cert", dir.Path("junk.pem"), "--tls-key", dir.Path("junk.pem")}, "--tls-cert"},
      {{"--tls-cert", dir.Path("junk.pem")}, "--tls-key"},
      {{"--tls-self-signed", dir.Path("ca.pem"), "--tls-cert", dir.Path("junk.pem"), "--tls-key",
        dir.Path("junk.pem")},
       "--tls-self-signed"},
      {{"--tls-self-signed", dir.Path("no/such/dir/ca.pem")}, "--tls-self-signed"},
      {{"--no-http2"}, "--no-http2"},
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
