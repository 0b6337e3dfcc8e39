// What providers make of HTTP: failures by status and body, Retry-After,
// header lines, and keys kept out of messages.

#include "nodes/provider.h"

#include <doctest/doctest.h>

#include <string>

#include "tests/fakes/provider_fixture.h"

namespace keel {
namespace {

using testing::kKey;
using testing::kWallNow;
using testing::Reply;

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
