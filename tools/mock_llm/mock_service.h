#pragma once
// MockService: what keel-mock-llm does with a request, whatever carried it
// (HTTP/1.1 through evhttp, plain or over TLS; HTTP/2 through nghttp2). It
// routes the request, answers the side endpoints, and takes each chat
// request from arrival to end: the reply a MockResponder gives, with the
// fault its options, the FaultPlan or the request's directives ask for; the
// latency wait, on a timer; and the RequestLog entry (docs/mock-llm.md).
//
// The front ends own the wire: each chat request comes with a ChatExchange
// of the front end's, which writes, resets or closes it when the service
// says so and reports how it ended.
//
// Thread-safety: everything on the thread running the event_base given.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "nodes/mock_reply.h"
#include "tools/mock_llm/fault_plan.h"
#include "tools/mock_llm/request_log.h"

struct event;
struct event_base;

namespace keel::mock {

struct MockServiceOptions {
  FaultPlanOptions faults;
  double retry_after = 1;   // seconds sent with an injected 429
  std::string require_key;  // "": any request is authorized
};

enum class Method { kGet, kPost, kOther };

// A request as a front end hands it over.
struct Request {
  Method method = Method::kOther;
  std::string path;  // without the query
  std::string body;
  std::string authorization;          // the Authorization header; "" when absent
  std::string api_key;                // the x-api-key header; "" when absent
  bool auth = false;                  // whether either header came
  const char* protocol = "http/1.1";  // "http/1.1" or "h2", for the log
};

struct Header {
  const char* name;  // as HTTP/1.1 spells it; HTTP/2 sends it in lower case
  std::string value;
};

// A response to write: status, headers (Content-Type included) and body.
struct Response {
  int status = 200;
  std::vector<Header> headers;
  std::string body;
  // A Content-Length header announces more than `body`: the transport sends
  // `body`, then cuts the response (HTTP/1.1: closes the connection; HTTP/2:
  // resets the stream).
  bool truncated = false;
};

class MockService;

// ChatExchange: one chat request from its arrival to its end, as the service
// sees it (what it decided, its wait) and as its front end's subclass
// carries it. Owned by the MockService from StartChat until it ends. Used on
// the loop thread only.
class ChatExchange {
 public:
  virtual ~ChatExchange();
  ChatExchange(const ChatExchange&) = delete;
  ChatExchange& operator=(const ChatExchange&) = delete;

 protected:
  ChatExchange() = default;

  // Reports how the request ended on the wire: "answered" or "truncated"
  // once the response is written, "client_closed" when the client went away
  // first. Logs it and destroys *this.
  void Ended(const char* outcome);

  // Watches for the client going away while the request waits; the front
  // end then calls Ended("client_closed").
  virtual void WatchClient() = 0;
  // Writes `response`, then calls Ended (at once or later).
  virtual void Respond(const Response& response) = 0;
  // Ends the request without a (further) answer: a reset (TCP RST; HTTP/2
  // RST_STREAM with INTERNAL_ERROR) or a plain close. The service ends the
  // exchange itself right after; the front end must not call Ended.
  virtual void Abort(bool reset) = 0;

 private:
  friend class MockService;

  MockService* service_ = nullptr;
  LogEntry entry_;
  std::chrono::steady_clock::time_point start_;
  MockReply reply_;
  event* wait_ = nullptr;  // the latency timer while it waits
};

class MockService {
 public:
  // `log` must outlive the service; `base` runs its timers.
  MockService(MockServiceOptions options, RequestLog* log, event_base* base);
  // Exchanges still open are destroyed without being logged.
  ~MockService();
  MockService(const MockService&) = delete;
  MockService& operator=(const MockService&) = delete;

  // A status and JSON body to send at once.
  struct Answer {
    int status = 200;
    std::string body;
  };

  // The answer to `request` when it is not a chat request. For a chat
  // request, nullopt with *dialect set: the front end then calls StartChat.
  std::optional<Answer> Route(const Request& request, MockDialect* dialect);

  // Takes a chat request in: replies, waits, faults and logs it. The
  // exchange may already have ended when this returns.
  void StartChat(std::unique_ptr<ChatExchange> exchange, const Request& request,
                 MockDialect dialect);

  // Ends waits early and closes hangs (logged "hang_closed"); chat requests
  // coming later are answered without waiting.
  void Stop();
  bool stopping() const { return stopping_; }
  // True when no chat request is in flight.
  bool idle() const { return pending_.empty(); }
  // Called each time the last chat request in flight ends after Stop.
  void set_on_idle(std::function<void()> on_idle) { on_idle_ = std::move(on_idle); }

 private:
  friend class ChatExchange;

  static void OnWaited(int fd, short what, void* exchange);

  // The reply to a chat request: a 401 without the required key, else the
  // responder's, with `fault` (from the plan; "" for none) injected unless
  // the request failed on its own.
  MockReply ReplyTo(const Request& request, MockDialect dialect, const std::string& fault);
  // Arms the latency timer for what is left of the wait; false when none is.
  bool Wait(ChatExchange* x);
  // The wait is over (or cut short by Stop): answer, reset or keep hanging.
  void Proceed(ChatExchange* x);
  // Logs `x` with `outcome` and forgets it.
  void End(ChatExchange* x, const char* outcome);

  const MockServiceOptions options_;
  RequestLog* const log_;
  event_base* const base_;
  MockResponder responder_;
  FaultPlan plan_;
  int64_t requests_ = 0;  // chat requests so far
  bool stopping_ = false;
  std::function<void()> on_idle_;
  // Chat requests not yet ended, each owned here until End.
  std::unordered_map<ChatExchange*, std::unique_ptr<ChatExchange>> pending_;
};

}  // namespace keel::mock
