#include "nodes/http_loop.h"

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include "nodes/http_transfer.h"

namespace keel {
namespace {

using std::chrono::milliseconds;

// Polls `done` every 5 ms for up to `limit`; true once it holds.
template <typename Predicate>
bool WaitFor(Predicate done, milliseconds limit = milliseconds(5000)) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(milliseconds(5));
  }
  return true;
}

int ThreadCount() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
  }
  return -1;
}

// An HTTP server on 127.0.0.1 with the routes the tests use, on its own
// thread. Declare it before the HttpLoop so the loop (and its connections)
// goes first.
class TestServer {
 public:
  explicit TestServer(size_t workers = 16) {
    signal(SIGPIPE, SIG_IGN);
    server_.new_task_queue = [workers] { return new httplib::ThreadPool(workers); };
    server_.Get("/echo",
                [this](const httplib::Request& req, httplib::Response& res) { Echo(req, res); });
    server_.Post("/echo",
                 [this](const httplib::Request& req, httplib::Response& res) { Echo(req, res); });
    server_.Put("/echo",
                [this](const httplib::Request& req, httplib::Response& res) { Echo(req, res); });
    server_.Get(R"(/status/(\d+))", [](const httplib::Request& req, httplib::Response& res) {
      res.status = std::stoi(req.matches[1]);
      res.set_content("status " + std::string(req.matches[1]), "text/plain");
    });
    server_.Get("/retry", [](const httplib::Request& req, httplib::Response& res) {
      res.status = 429;
      for (const auto& [name, value] : req.params) res.set_header(name.c_str(), value);
    });
    server_.Get("/slow", [](const httplib::Request&, httplib::Response& res) {
      std::this_thread::sleep_for(milliseconds(200));
      res.set_content("slow", "text/plain");
    });
    server_.Get("/count", [this](const httplib::Request&, httplib::Response& res) {
      ++counted;
      res.set_content("counted", "text/plain");
    });
    // Streams a byte every 20 ms until the client goes away.
    server_.Get("/drip", [this](const httplib::Request&, httplib::Response& res) {
      ++drips_started;
      res.set_chunked_content_provider("text/plain", [this](size_t, httplib::DataSink& sink) {
        if (!sink.write("x", 1)) {
          ++drips_closed;
          return false;
        }
        std::this_thread::sleep_for(milliseconds(20));
        return true;
      });
    });
    // `n` bytes, with a Content-Length (/bytes) or chunked without one (/stream).
    server_.Get(R"(/bytes/(\d+))", [](const httplib::Request& req, httplib::Response& res) {
      res.set_content(std::string(std::stoul(req.matches[1]), 'b'), "text/plain");
    });
    server_.Get(R"(/stream/(\d+))", [this](const httplib::Request& req, httplib::Response& res) {
      size_t total = std::stoul(req.matches[1]);
      res.set_chunked_content_provider(
          "text/plain", [this, total, sent = size_t{0}](size_t, httplib::DataSink& sink) mutable {
            std::string chunk(std::min<size_t>(16384, total - sent), 's');
            if (!sink.write(chunk.data(), chunk.size())) {
              ++streams_closed;
              return false;
            }
            sent += chunk.size();
            if (sent == total) sink.done();
            return true;
          });
    });
    int listener = -1;
    server_.set_socket_options([&listener](int sock) {
      int yes = 1;
      setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
      listener = sock;
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    REQUIRE(port_ > 0);
    // httplib listens with a backlog of 5, which drops a burst of connects
    // (and curl retries them only after a second); Linux lets a second
    // listen() raise it.
    REQUIRE(listen(listener, 512) == 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // One request through, so the workers are up before a test starts its
    // clock (slow under sanitizers with many workers).
    httplib::Client client("127.0.0.1", port_);
    bool ready =
        WaitFor([&] { return server_.is_running() && client.Get("/echo"); }, milliseconds(60000));
    if (!ready) {
      server_.stop();
      thread_.join();
    }
    REQUIRE(ready);
  }

  ~TestServer() {
    server_.stop();
    thread_.join();
  }

  std::string Url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

  std::atomic<int> counted{0};
  std::atomic<int> drips_started{0};
  std::atomic<int> drips_closed{0};
  std::atomic<int> streams_closed{0};  // /stream transfers the client stopped early

 private:
  static void Echo(const httplib::Request& req, httplib::Response& res) {
    res.status = 201;
    res.set_header("X-Reply", "Value");
    res.set_content(req.method + "|" + req.get_header_value("X-Test") + "|" + req.body,
                    "text/plain");
  }

  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
};

// Sends `request` and returns a future for its response.
std::future<HttpResponse> Fetch(HttpLoop& loop, HttpRequest request) {
  auto promise = std::make_shared<std::promise<HttpResponse>>();
  auto future = promise->get_future();
  loop.Send(std::move(request), [promise](HttpResponse r) { promise->set_value(std::move(r)); });
  return future;
}

HttpResponse Await(std::future<HttpResponse>& future) {
  REQUIRE(future.wait_for(std::chrono::seconds(15)) == std::future_status::ready);
  return future.get();
}

HttpRequest Get(const std::string& url) {
  HttpRequest request;
  request.method = "GET";
  request.url = url;
  return request;
}

std::string HttpDate(time_t when) {
  char text[64];
  struct tm parts;
  gmtime_r(&when, &parts);
  strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &parts);
  return text;
}

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

TEST_CASE("a deadline ends the transfer with kTimeout and closes the connection" *
          doctest::timeout(30)) {
  TestServer server;
  HttpLoop loop(SystemClock());
  HttpRequest request = Get(server.Url("/drip?secret=1"));
  request.deadline = SystemClock()->Now() + 1;
  auto future = Fetch(loop, request);
  HttpResponse response = Await(future);
  CHECK(response.transport.kind() == ErrorKind::kTimeout);
  CHECK(response.transport.message().find("timed out after") != std::string::npos);
  CHECK(response.transport.message().find("GET " + server.Url("/drip")) == 0);
  CHECK(response.transport.message().find("secret") == std::string::npos);
  CHECK(response.seconds >= 0.99);
  CHECK(response.seconds < 5);
  CHECK(server.drips_started == 1);
  CHECK(WaitFor([&] { return server.drips_closed == 1; }));
}

TEST_CASE("cancelling the token ends the transfer with kCancelled and closes the connection" *
          doctest::timeout(30)) {
  TestServer server;
  HttpLoop loop(SystemClock());
  CancelToken token;
  HttpRequest request = Get(server.Url("/drip"));
  request.cancel = &token;
  auto future = Fetch(loop, request);
  REQUIRE(WaitFor([&] { return server.drips_started == 1; }));
  auto cancelled_at = std::chrono::steady_clock::now();
  token.Cancel();
  HttpResponse response = Await(future);
  double after =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - cancelled_at).count();
  CHECK(response.transport.kind() == ErrorKind::kCancelled);
  CHECK(after < 2);
  CHECK(WaitFor([&] { return server.drips_closed == 1; }));
  CHECK(loop.in_flight() == 0);
}

TEST_CASE("a token cancelled before Send ends the transfer without a request" *
          doctest::timeout(30)) {
  TestServer server;
  HttpLoop loop(SystemClock());
  CancelToken token;
  token.Cancel();
  HttpRequest request = Get(server.Url("/count"));
  request.cancel = &token;
  auto future = Fetch(loop, request);
  CHECK(Await(future).transport.kind() == ErrorKind::kCancelled);
  auto after = Fetch(loop, Get(server.Url("/echo")));
  CHECK(Await(after).status == 201);
  CHECK(server.counted == 0);
}

TEST_CASE("a token that outlives its finished transfer may still be cancelled" *
          doctest::timeout(30)) {
  TestServer server;
  CancelToken token;
  {
    HttpLoop loop(SystemClock());
    HttpRequest request = Get(server.Url("/count"));
    request.cancel = &token;
    auto future = Fetch(loop, request);
    CHECK(Await(future).status == 200);
  }
  token.Cancel();
  CHECK(server.counted == 1);
}

TEST_CASE("a deadline already past ends with kTimeout without reaching the server" *
          doctest::timeout(30)) {
  TestServer server;
  HttpLoop loop(SystemClock());
  HttpRequest request = Get(server.Url("/count"));
  request.deadline = SystemClock()->Now() - 1;
  auto future = Fetch(loop, request);
  HttpResponse response = Await(future);
  CHECK(response.transport.kind() == ErrorKind::kTimeout);
  auto after = Fetch(loop, Get(server.Url("/echo")));
  CHECK(Await(after).status == 201);
  CHECK(server.counted == 0);
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

TEST_CASE("destroying the loop ends transfers in flight with kCancelled" * doctest::timeout(30)) {
  TestServer server;
  std::atomic<int> cancelled{0};
  std::atomic<int> done{0};
  {
    HttpLoop loop(SystemClock());
    for (int i = 0; i < 5; ++i) {
      loop.Send(Get(server.Url("/drip")), [&](HttpResponse r) {
        if (r.transport.kind() == ErrorKind::kCancelled) ++cancelled;
        ++done;
      });
    }
    REQUIRE(WaitFor([&] { return server.drips_started == 5; }));
    CHECK(loop.in_flight() == 5);
  }
  CHECK(done == 5);
  CHECK(cancelled == 5);
  CHECK(WaitFor([&] { return server.drips_closed == 5; }));
}

TEST_CASE("a request sent from a done callback during shutdown is cancelled too" *
          doctest::timeout(30)) {
  TestServer server;
  std::atomic<int> resent_cancelled{0};
  {
    auto loop = std::make_unique<HttpLoop>(SystemClock());
    HttpLoop* raw = loop.get();
    for (int i = 0; i < 3; ++i) {
      // Each `done` runs while the loop shuts down and sends again: that
      // request must end too, on the same thread, not start another one.
      raw->Send(Get(server.Url("/drip")), [&, raw](HttpResponse) {
        raw->Send(Get(server.Url("/drip")), [&](HttpResponse again) {
          if (again.transport.kind() == ErrorKind::kCancelled) ++resent_cancelled;
        });
      });
    }
    REQUIRE(WaitFor([&] { return server.drips_started == 3; }));
    loop.reset();
  }
  CHECK(resent_cancelled == 3);
}

}  // namespace
}  // namespace keel
