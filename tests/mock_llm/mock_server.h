#pragma once
// MockServer: the HTTP side of keel-mock-llm. Serves OpenAI
// (/v1/chat/completions) and Anthropic (/v1/messages) chat requests from a
// MockResponder, injects the faults its options and the requests'
// directives ask for, and records every chat request in a RequestLog
// (docs/mock-llm.md).
//
// One libevent loop does everything: evhttp parses and writes HTTP, a timer
// per request makes the latency, and a watch on the request's socket sees the
// client close it while the request waits. No thread per connection, so
// hundreds of slow requests cost the server next to nothing.
//
// Thread-safety: Bind, then Run, on one thread; everything else happens on
// that thread inside Run. SIGTERM and SIGINT, taken by the loop, stop it.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "nodes/mock_reply.h"
#include "tests/mock_llm/fault_plan.h"
#include "tests/mock_llm/request_log.h"

struct event;
struct event_base;
struct evhttp;
struct evhttp_bound_socket;
struct evhttp_connection;
struct evhttp_request;

namespace keel::mock {

struct MockServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;  // 0: an ephemeral port
  FaultPlanOptions faults;
  double retry_after = 1;   // seconds sent with an injected 429
  std::string require_key;  // "": any request is authorized
};

class MockServer {
 public:
  // `log` must outlive the server.
  MockServer(MockServerOptions options, RequestLog* log);
  ~MockServer();
  MockServer(const MockServer&) = delete;
  MockServer& operator=(const MockServer&) = delete;

  // Binds the listening socket. Returns the port, or -1 with *error set.
  int Bind(std::string* error);

  // Serves until SIGTERM or SIGINT; then stops accepting, ends hangs and
  // waits early, and returns once the requests in flight have ended (or a
  // grace period passed). False when the loop could not run.
  bool Run();

 private:
  struct Pending;

  static void OnRequest(evhttp_request* req, void* self);
  static void OnSignal(int fd, short what, void* self);
  static void OnGraceOver(int fd, short what, void* self);
  static void OnWaited(int fd, short what, void* pending);
  static void OnClientClosed(int fd, short what, void* pending);
  static void OnSent(evhttp_request* req, void* pending);
  static void OnConnectionGone(evhttp_connection* connection, void* pending);

  void Route(evhttp_request* req);
  void Chat(evhttp_request* req, MockDialect dialect);
  // The reply to a chat request: a 401 without the required key, else the
  // responder's, with `fault` (from the plan; "" for none) injected unless
  // the request failed on its own.
  MockReply ReplyTo(evhttp_request* req, const std::string& body, MockDialect dialect,
                    const std::string& fault);
  // Arms p's latency timer for what is left of its wait; false when none is.
  bool Wait(Pending* p);
  // The wait is over (or cut short by a stop): answer, reset or keep hanging.
  void Proceed(Pending* p);
  // Writes the answer; the request ends when it is sent or the client goes.
  void Send(Pending* p);
  // Closes the request's connection without a (further) answer, with a
  // reset (RST) or a plain close.
  void Drop(Pending* p, bool reset, const std::string& outcome);
  // Logs `p` with `outcome` and forgets it.
  void End(Pending* p, const std::string& outcome);
  void Stop();
  void ExitWhenIdle();

  const MockServerOptions options_;
  RequestLog* const log_;
  MockResponder responder_;
  FaultPlan plan_;
  event_base* base_ = nullptr;
  evhttp* http_ = nullptr;
  evhttp_bound_socket* listener_ = nullptr;  // null once stopping
  event* sigterm_ = nullptr;
  event* sigint_ = nullptr;
  event* grace_ = nullptr;  // ends Run when requests outlive a stop
  int64_t requests_ = 0;    // chat requests so far
  bool stopping_ = false;
  // Chat requests not yet ended, each owned here until End.
  std::unordered_map<Pending*, std::unique_ptr<Pending>> pending_;
};

}  // namespace keel::mock
