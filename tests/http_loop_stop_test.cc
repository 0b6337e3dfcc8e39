// HttpLoop ending transfers: deadlines, cancellation tokens before, during
// and after a transfer, and a loop destroyed with transfers in flight or
// sent from a done callback during shutdown.

#include "nodes/http_loop.h"

#include <doctest/doctest.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "tests/http_loop_fixture.h"

namespace keel {
namespace {

using testing::Await;
using testing::Fetch;
using testing::Get;
using testing::TestServer;
using testing::WaitFor;

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
