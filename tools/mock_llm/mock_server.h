#pragma once
// MockServer: the network side of keel-mock-llm. Listens on one port, plain
// HTTP or, with a TlsContext, HTTPS, and hands every request to a
// MockService (docs/mock-llm.md). evhttp serves HTTP/1.1, plain and over
// TLS; on HTTPS, connections whose ALPN chose h2 are served by nghttp2
// (H2Server).
//
// One libevent loop does everything: a timer per request makes the latency,
// and the client going away while a request waits is seen at once. No
// thread per connection or per stream, so hundreds of slow requests cost the
// server next to nothing.
//
// Thread-safety: Bind, then Run, on one thread; everything else happens on
// that thread inside Run. SIGTERM and SIGINT, taken by the loop, stop it.

#include <memory>
#include <string>

#include "tools/mock_llm/mock_service.h"
#include "tools/mock_llm/request_log.h"

struct bufferevent;
struct event;
struct event_base;
struct evhttp;
struct evhttp_bound_socket;
struct evhttp_request;

namespace keel::mock {

class H2Server;
class TlsContext;

struct MockServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;  // 0: an ephemeral port
  MockServiceOptions service;
};

class MockServer {
 public:
  // `log` must outlive the server. With `tls` it serves HTTPS (HTTP/2 and
  // HTTP/1.1, as the TlsContext's ALPN allows); without, plain HTTP.
  MockServer(MockServerOptions options, RequestLog* log, std::unique_ptr<TlsContext> tls);
  ~MockServer();
  MockServer(const MockServer&) = delete;
  MockServer& operator=(const MockServer&) = delete;

  // Binds the listening socket. Returns the port, or -1 with *error set.
  int Bind(std::string* error);

  // Serves until SIGTERM or SIGINT; then stops accepting, ends hangs and
  // waits early, and returns once the requests in flight have ended and
  // their answers are written (or a grace period passed). False when the
  // loop could not run.
  bool Run();

 private:
  static void OnRequest(evhttp_request* req, void* self);
  static bufferevent* NewTlsBufferevent(event_base* base, void* self);
  static void OnSignal(int fd, short what, void* self);
  static void OnGraceOver(int fd, short what, void* self);

  void Stop();
  void ExitWhenIdle();

  const MockServerOptions options_;
  const std::unique_ptr<TlsContext> tls_;  // null for plain HTTP
  event_base* base_ = nullptr;
  std::unique_ptr<MockService> service_;
  std::unique_ptr<H2Server> h2_;  // with tls_ only
  evhttp* http_ = nullptr;
  evhttp_bound_socket* listener_ = nullptr;  // null once stopping
  event* sigterm_ = nullptr;
  event* sigint_ = nullptr;
  event* grace_ = nullptr;  // ends Run when requests outlive a stop
};

}  // namespace keel::mock
