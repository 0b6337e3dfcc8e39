#pragma once
// HttpLoop: one thread driving a libcurl multi handle, so that any number of
// HTTP requests are in flight without holding a TBB worker. The same thread
// runs the timers of the loop's clock(), so a process that uses that clock
// for everything has one thread for all its waiting.
//
// Send() may be called from any thread; it queues the request and wakes the
// loop (an eventfd). Each request carries a deadline and a cancel
// token: at the deadline the transfer is removed from the multi handle and
// its connection closed (the server sees it go), and so it is at once when
// the token is cancelled. `done` runs exactly once, on the I/O thread; it must
// not block (hand real work to a worker, e.g. with NodeContext::post).
// Destroying the loop aborts what is still in flight (each `done` then gets
// kCancelled) and joins the thread.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/cancel_token.h"
#include "engine/clock.h"
#include "engine/status.h"

namespace keel {

// The largest reply body HttpLoop takes by default (64 MiB): a larger one
// is aborted as soon as it passes the limit and fails kPermanent.
inline constexpr size_t kMaxResponseBytes = size_t{64} << 20;

// Only http:// and https:// URLs are fetched (redirects included); any
// other scheme (file://, ftp://, ...) fails kPermanent.
struct HttpRequest {
  std::string method = "POST";
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;  // name, value
  std::string body;
  double deadline = 0;                  // Clock::Now() time the transfer is aborted; 0: none
  const CancelToken* cancel = nullptr;  // may be null; must outlive the request
  double connect_timeout = 10;          // seconds
  // Over https, offer HTTP/2 (the server chooses, by ALPN); then requests to
  // one server share a connection. http:// is always HTTP/1.1.
  bool http2 = true;
  std::string ca_file;  // PEM certificates to trust instead of the system's; "": the system's
  size_t max_body_bytes = kMaxResponseBytes;  // a longer reply body fails kPermanent
};

struct HttpResponse {
  // ok: an HTTP response arrived completely (any status). Otherwise the
  // transfer failed: kTimeout (deadline), kCancelled (token), kTransient
  // (connection refused or reset, DNS, a response cut short), kPermanent
  // (a malformed URL, a scheme other than http or https, a server
  // certificate that does not verify, a body over max_body_bytes).
  Status transport;
  int status = 0;  // HTTP status code, when transport is ok
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  double seconds = 0;  // from Send to completion

  // The value of header `name` (lower case), or "".
  std::string Header(const std::string& name) const;
  // Seconds the server asks to wait (Retry-After as seconds or an HTTP
  // date, or retry-after-ms); -1 when absent or unreadable.
  double RetryAfter(double wall_now) const;
  // Takes one header line as it came off the wire: a status line starts the
  // headers afresh (after a 1xx), "Name: value" is added with the name
  // lower-cased and both trimmed; anything else is ignored.
  void AddHeaderLine(std::string_view line);
};

using HttpDone = std::function<void(HttpResponse)>;

class HttpLoop {
 public:
  // `clock` turns deadlines into curl timeouts. The thread starts with the
  // first Send. Throws std::system_error when the process cannot get the
  // descriptors the loop needs (epoll, eventfd).
  explicit HttpLoop(Clock* clock);
  // Aborts what is in flight and joins the I/O thread; when it runs on that
  // thread (a timer or `done` held the last reference), the thread finishes
  // the shutdown by itself instead.
  ~HttpLoop();
  HttpLoop(const HttpLoop&) = delete;
  HttpLoop& operator=(const HttpLoop&) = delete;

  // Queues `request`; `done` later gets the response or the transport
  // failure, exactly once, on the I/O thread. Callable from any thread, from
  // inside a `done` too.
  void Send(HttpRequest request, HttpDone done);

  // A Clock whose time is the constructor's `clock` and whose timers run on
  // the I/O thread (starting it, like a Send). Valid as long as the loop;
  // timers still pending when the loop is destroyed never run.
  Clock* clock();

  // Transfers queued or in flight; for tests and benches.
  int64_t in_flight() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace keel
