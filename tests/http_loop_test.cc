// HttpLoop transfers against a local server: round trips, Retry-After,
// many slow requests on one thread, which URLs are fetched, reply size
// limits and certificate problems. Ending transfers (deadlines, tokens,
// shutdown) is in http_loop_stop_test.cc.

#include "nodes/http_loop.h"

#include <doctest/doctest.h>

#include <string>

#include "tests/http_loop_fixture.h"

namespace keel {
namespace {

using testing::Await;
using testing::Fetch;
using testing::Get;
using testing::HttpDate;
using testing::TestServer;
using testing::ThreadCount;
using testing::WaitFor;

TEST_CASE("GET, POST and PUT round trips carry headers, bodies and status" * doctest::timeout(30)) {
  TestServer server;
  HttpLoop loop(SystemClock());

  HttpRequest post;
  post.url = server.Url("/echo");
  post.headers = {{"X-Test", "abc"}, {"Content-Type", "text/plain"}};
  post.body = "hello";
  std::promise<std::thread::id> done_thread;
  auto done_future = done_thread.get_future();
  auto promise = std::make_shared<std::promise<HttpResponse>>();
  auto posted = promise->get_future();
  loop.Send(post, [promise, &done_thread](HttpResponse r) {
    done_thread.set_value(std::this_thread::get_id());
    promise->set_value(std::move(r));
  });
  HttpResponse response = Await(posted);
  CHECK(response.transport.ok());
  CHECK(response.status == 201);
  CHECK(response.body == "POST|abc|hello");
  CHECK(response.Header("x-reply") == "Value");
  CHECK(response.Header("content-type") == "text/plain");
  CHECK(response.Header("absent") == "");
  CHECK(response.seconds >= 0);
  CHECK(done_future.get() != std::this_thread::get_id());

  HttpRequest get = Get(server.Url("/echo"));
  get.headers = {{"X-Test", "g"}};
  auto got = Fetch(loop, get);
  response = Await(got);
  CHECK(response.status == 201);
  CHECK(response.body == "GET|g|");

  HttpRequest put;
  put.method = "PUT";
  put.url = server.Url("/echo");
  put.headers = {{"Content-Type", "text/plain"}};
  put.body = std::string(300000, 'b');  // big enough for curl to consider Expect: 100-continue
  auto putted = Fetch(loop, put);
  response = Await(putted);
  CHECK(response.status == 201);
  CHECK(response.body.size() == put.body.size() + 5);
  CHECK(response.body.compare(0, 5, "PUT||") == 0);

  for (int code : {200, 404, 429, 500, 503}) {
    auto status = Fetch(loop, Get(server.Url("/status/" + std::to_string(code))));
    response = Await(status);
    CHECK(response.transport.ok());
    CHECK(response.status == code);
    CHECK(response.body == "status " + std::to_string(code));
  }
  CHECK(loop.in_flight() == 0);
}

TEST_CASE("RetryAfter reads seconds, an HTTP date and retry-after-ms" * doctest::timeout(30)) {
  TestServer server;
  HttpLoop loop(SystemClock());
  time_t now = time(nullptr);

  auto seconds = Fetch(loop, Get(server.Url("/retry?Retry-After=7")));
  CHECK(Await(seconds).RetryAfter(static_cast<double>(now)) == 7);

  auto date = Fetch(loop, Get(server.Url("/retry?Retry-After=") +
                              httplib::detail::encode_query_param(HttpDate(now + 30))));
  HttpResponse dated = Await(date);
  CHECK(dated.status == 429);
  CHECK(dated.RetryAfter(static_cast<double>(now)) == doctest::Approx(30));
  CHECK(dated.RetryAfter(static_cast<double>(now + 100)) == 0);

  auto ms = Fetch(loop, Get(server.Url("/retry?retry-after-ms=1500&Retry-After=2")));
  CHECK(Await(ms).RetryAfter(static_cast<double>(now)) == doctest::Approx(1.5));

  auto none = Fetch(loop, Get(server.Url("/retry")));
  CHECK(Await(none).RetryAfter(static_cast<double>(now)) == -1);

  HttpResponse response;
  response.headers = {{"retry-after", "soon"}};
  CHECK(response.RetryAfter(0) == -1);
  response.headers = {{"retry-after", "-3"}};
  CHECK(response.RetryAfter(0) == -1);
  response.headers = {{"retry-after", "2.5"}};
  CHECK(response.RetryAfter(0) == 2.5);
}

TEST_CASE("200 slow requests run at once on one thread" * doctest::timeout(60)) {
  TestServer server(/*workers=*/260);  // enough that 200 slow requests run at once
  HttpLoop loop(SystemClock());
  int threads_before = ThreadCount();
  auto start = std::chrono::steady_clock::now();
  std::vector<std::future<HttpResponse>> futures;
  for (int i = 0; i < 200; ++i) futures.push_back(Fetch(loop, Get(server.Url("/slow"))));
  CHECK(loop.in_flight() > 0);
  int threads_during = ThreadCount();
  int ok = 0;
  for (auto& future : futures) {
    HttpResponse response = Await(future);
    if (response.transport.ok() && response.status == 200 && response.body == "slow") ++ok;
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(ok == 200);
  CHECK(seconds < 10);  // one after another would take 40 s
  CHECK(threads_during - threads_before <= 4);
  CHECK(ThreadCount() - threads_before <= 4);
  CHECK(loop.in_flight() == 0);
  MESSAGE("200 x 200 ms requests took " << seconds << " s");
}

TEST_CASE("connection refused is transient; a malformed URL or unknown scheme is permanent" *
          doctest::timeout(30)) {
  // A bound socket that never listens: connecting to it is refused.
  int sock = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(sock >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(sock, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t len = sizeof addr;
  REQUIRE(getsockname(sock, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  std::string refused_url = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/x";

  HttpLoop loop(SystemClock());
  auto refused = Fetch(loop, Get(refused_url));
  HttpResponse response = Await(refused);
  CHECK(response.transport.kind() == ErrorKind::kTransient);
  CHECK(response.transport.message().find("GET " + refused_url) == 0);
  CHECK(response.status == 0);

  auto malformed = Fetch(loop, Get("http://exa mple.com/"));
  CHECK(Await(malformed).transport.kind() == ErrorKind::kPermanent);

  auto scheme = Fetch(loop, Get("foo://user:pw@example.com/path?key=secret"));
  response = Await(scheme);
  CHECK(response.transport.kind() == ErrorKind::kPermanent);
  CHECK(response.transport.message().find("GET foo://example.com/path") == 0);
  CHECK(response.transport.message().find("secret") == std::string::npos);
  CHECK(response.transport.message().find("pw") == std::string::npos);
  close(sock);
}

TEST_CASE("only http and https URLs are fetched" * doctest::timeout(30)) {
  HttpLoop loop(SystemClock());
  for (const char* url : {"file:///etc/passwd", "ftp://127.0.0.1/x", "dict://127.0.0.1:1/x"}) {
    CAPTURE(url);
    auto fetched = Fetch(loop, Get(url));
    HttpResponse response = Await(fetched);
    CHECK(response.transport.kind() == ErrorKind::kPermanent);
    CHECK(response.transport.message().find("only http:// and https:// URLs are supported") !=
          std::string::npos);
    CHECK(response.body.empty());
  }
}

TEST_CASE("a reply body over the limit is aborted and fails permanent" * doctest::timeout(30)) {
  TestServer server;
  HttpLoop loop(SystemClock());
  auto limited = [&](const std::string& path, size_t limit) {
    HttpRequest request = Get(server.Url(path));
    request.max_body_bytes = limit;
    auto fetched = Fetch(loop, std::move(request));
    return Await(fetched);
  };
  HttpResponse fits = limited("/bytes/1000", 1000);
  CHECK(fits.transport.ok());
  CHECK(fits.body.size() == 1000);

  // Refused from its Content-Length, before the body comes.
  HttpResponse declared = limited("/bytes/1001", 1000);
  CHECK(declared.transport.kind() == ErrorKind::kPermanent);
  CHECK(declared.transport.message().find(
            "the reply body is larger than the limit of 1000 bytes") != std::string::npos);
  CHECK(declared.body.empty());

  // Without a length: stopped once the limit is passed, long before the end.
  HttpResponse streamed = limited("/stream/104857600", size_t{1} << 20);
  CHECK(streamed.transport.kind() == ErrorKind::kPermanent);
  CHECK(streamed.transport.message().find("larger than the limit of 1048576 bytes (1 MiB)") !=
        std::string::npos);
  CHECK(WaitFor([&] { return server.streams_closed.load() == 1; }));
  CHECK(kMaxResponseBytes == size_t{64} << 20);
}

TEST_CASE("certificate problems are permanent and say so" * doctest::timeout(30)) {
  for (CURLcode code : {CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM,
                        CURLE_SSL_ISSUER_ERROR, CURLE_SSL_CACERT_BADFILE}) {
    CAPTURE(code);
    Transfer t;
    t.request = Get("https://127.0.0.1:1/v1");
    std::snprintf(t.error, sizeof t.error, "SSL certificate problem: self-signed certificate");
    Status s = TransferFailure(t, code, 0.1);
    CHECK(s.kind() == ErrorKind::kPermanent);
    CHECK(s.message().find("certificate") != std::string::npos);
  }
  // A handshake cut short may heal.
  Transfer reset;
  reset.request = Get("https://127.0.0.1:1/v1");
  CHECK(TransferFailure(reset, CURLE_SSL_CONNECT_ERROR, 0.1).kind() == ErrorKind::kTransient);

  // Really: trusted certificates that cannot be read fail before any retry could help.
  TestServer server;
  HttpLoop loop(SystemClock());
  HttpRequest request = Get("https://127.0.0.1:" + server.Url("/echo").substr(17));
  request.ca_file = "/nonexistent/ca.pem";
  auto fetched = Fetch(loop, std::move(request));
  HttpResponse response = Await(fetched);
  CHECK(response.transport.kind() == ErrorKind::kPermanent);
  CHECK(response.transport.message().find("certificate") != std::string::npos);
}

}  // namespace
}  // namespace keel
