#pragma once
// MockServer: the HTTP side of keel-mock-llm. Serves OpenAI
// (/v1/chat/completions) and Anthropic (/v1/messages) chat requests from a
// MockResponder, injects the faults its options and the requests'
// directives ask for, and records every chat request in a RequestLog
// (docs/mock-llm.md).
//
// Every chat response is written through a content provider whose releaser
// runs when the library is done with the request; that is where a request
// "ends" and gets logged, with whether all of its bytes were written.
//
// Thread-safety: Bind, then Run on one thread; Stop may be called from any
// thread at any time. Requests are handled on the server's worker threads.

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "nodes/mock_reply.h"
#include "tests/mock_llm/fault_plan.h"
#include "tests/mock_llm/request_log.h"

namespace keel::mock {

struct MockServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;  // 0: an ephemeral port
  FaultPlanOptions faults;
  double retry_after = 1;   // seconds sent with an injected 429
  std::string require_key;  // "": any request is authorized
  int threads = 512;        // most worker threads, started as needed
};

class MockServer {
 public:
  // `log` must outlive the server.
  MockServer(MockServerOptions options, RequestLog* log);

  // Binds the listening socket. Returns the port, or -1 with *error set.
  int Bind(std::string* error);

  // Serves until Stop. Returns false when the listening loop failed.
  bool Run();

  // Stops listening, ends hangs and waits early, and makes Run return once
  // the requests in flight have ended.
  void Stop();

 private:
  struct Pending;

  void Chat(const httplib::Request& req, httplib::Response& res, MockDialect dialect);
  bool Authorized(const httplib::Request& req) const;
  // The reply to a chat request: a 401 without the required key, else the
  // responder's, with `fault` (from the plan; "" for none) injected unless
  // the request failed on its own.
  MockReply ReplyTo(const httplib::Request& req, MockDialect dialect, const std::string& fault);
  // Sets `res` to send `body`: all of it, or only its first `sent` bytes and
  // then close the connection. Logs `pending` when the request ends.
  void Answer(httplib::Response& res, const std::string& body, size_t sent,
              std::shared_ptr<Pending> pending);

  const MockServerOptions options_;
  RequestLog* const log_;
  MockResponder responder_;
  FaultPlan plan_;
  httplib::Server server_;
  std::atomic<int64_t> requests_{0};   // chat requests so far
  std::atomic<int64_t> in_flight_{0};  // chat requests not yet ended
  std::atomic<bool> stopping_{false};
  enum class RunState { kIdle, kStarting, kDone };
  std::atomic<RunState> run_state_{RunState::kIdle};
  int listen_fd_ = -1;  // written by Bind (via the socket-options hook) only
};

}  // namespace keel::mock
