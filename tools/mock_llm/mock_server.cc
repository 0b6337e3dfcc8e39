#include "tools/mock_llm/mock_server.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netdb.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "tools/mock_llm/h2_server.h"
#include "tools/mock_llm/tls_context.h"

namespace keel::mock {
namespace {

// A burst of hundreds of connects must not wait for SYN retries.
constexpr int kBacklog = 4096;

// How long a stopped server waits for answers still being written.
constexpr timeval kGrace{2, 0};

constexpr const char* kJson = "application/json";

std::string Body(evhttp_request* req) {
  evbuffer* in = evhttp_request_get_input_buffer(req);
  std::string body(evbuffer_get_length(in), '\0');
  evbuffer_copyout(in, body.data(), body.size());
  return body;
}

// Sends `status` with `body` (JSON) at once.
void Reply(evhttp_request* req, int status, const std::string& body) {
  evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", kJson);
  evbuffer* out = evbuffer_new();
  evbuffer_add(out, body.data(), body.size());
  evhttp_send_reply(req, status, nullptr, out);
  evbuffer_free(out);
}

// The request's socket: what the client-close watch and a reset act on.
int SocketOf(evhttp_request* req) {
  return bufferevent_getfd(evhttp_connection_get_bufferevent(evhttp_request_get_connection(req)));
}

// Closes connection socket `fd` with a RST. dup2 closes the connection's only
// descriptor and leaves a placeholder socket under its number, which libevent
// then closes as its own.
void ResetSocket(int fd) {
  linger abort{1, 0};  // close() sends a RST instead of a FIN
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort, sizeof abort);
  const int placeholder = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (placeholder < 0) return;
  dup2(placeholder, fd);
  close(placeholder);
}

}  // namespace

// HttpExchange: the ChatExchange of a chat request evhttp carries (HTTP/1.1,
// plain or over TLS). Loop thread only.
class HttpExchange : public ChatExchange {
 public:
  HttpExchange(evhttp_request* req, event_base* base, bool tls)
      : req_(req), connection_(evhttp_request_get_connection(req)), base_(base), tls_(tls) {}
  ~HttpExchange() override {
    StopWatching();
    if (close_cb_) evhttp_connection_set_closecb(connection_, nullptr, nullptr);
  }

 protected:
  void WatchClient() override {
    // Plain: a readable socket is a close, or a pipelined request (then the
    // watch stops). TLS: a closing client may send a close_notify alert
    // before its FIN, so only the FIN (EV_CLOSED) counts; evhttp does not
    // read while the request is being handled.
    const short what = tls_ ? EV_CLOSED | EV_PERSIST : EV_READ | EV_CLOSED | EV_PERSIST;
    watch_ = event_new(base_, SocketOf(req_), what, &HttpExchange::OnClientClosed, this);
    event_add(watch_, nullptr);
  }

  void Respond(const Response& response) override {
    StopWatching();
    evkeyvalq* headers = evhttp_request_get_output_headers(req_);
    for (const Header& h : response.headers) evhttp_add_header(headers, h.name, h.value.c_str());
    truncated_ = response.truncated;
    // evhttp closes the connection once the short body is written.
    if (truncated_) evhttp_add_header(headers, "Connection", "close");
    evhttp_request_set_on_complete_cb(req_, &HttpExchange::OnSent, this);
    evhttp_connection_set_closecb(connection_, &HttpExchange::OnConnectionGone, this);
    close_cb_ = true;
    evbuffer* out = evbuffer_new();
    evbuffer_add(out, response.body.data(), response.body.size());
    evhttp_send_reply(req_, response.status, nullptr, out);
    evbuffer_free(out);
  }

  // Frees the connection (and the request), after a RST when `reset`.
  void Abort(bool reset) override {
    StopWatching();
    if (reset) ResetSocket(SocketOf(req_));
    evhttp_connection_free(connection_);
  }

 private:
  static void OnClientClosed(int fd, short, void* self) {
    auto* x = static_cast<HttpExchange*>(self);
    if (!x->tls_) {
      char byte;
      const ssize_t n = recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
      if (n > 0) {
        // More bytes (a pipelined request), not a close: stop watching
        // rather than wake up for them again and again.
        x->StopWatching();
        return;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    }
    x->Abort(false);
    x->Ended("client_closed");
  }

  static void OnSent(evhttp_request*, void* self) {
    auto* x = static_cast<HttpExchange*>(self);
    evhttp_connection_set_closecb(x->connection_, nullptr, nullptr);
    x->close_cb_ = false;
    x->Ended(x->truncated_ ? "truncated" : "answered");
  }

  static void OnConnectionGone(evhttp_connection* connection, void* self) {
    auto* x = static_cast<HttpExchange*>(self);
    evhttp_connection_set_closecb(connection, nullptr, nullptr);
    x->close_cb_ = false;
    x->Ended("client_closed");
  }

  void StopWatching() {
    if (watch_ != nullptr) event_free(watch_);
    watch_ = nullptr;
  }

  evhttp_request* const req_;  // freed by libevent when the request ends
  evhttp_connection* const connection_;
  event_base* const base_;
  const bool tls_;
  event* watch_ = nullptr;  // the client closing the socket while it waits
  bool truncated_ = false;
  bool close_cb_ = false;  // OnConnectionGone is the connection's close callback
};

MockServer::MockServer(MockServerOptions options, RequestLog* log, std::unique_ptr<TlsContext> tls)
    : options_(std::move(options)), tls_(std::move(tls)) {
  event_config* config = event_config_new();
  // The client-close watch needs EV_CLOSED (epoll's EPOLLRDHUP).
  event_config_require_features(config, EV_FEATURE_EARLY_CLOSE);
  // Timers on the precise monotonic clock: a coarse one fires latencies up
  // to a tick early.
  event_config_set_flag(config, EVENT_BASE_FLAG_PRECISE_TIMER);
  base_ = event_base_new_with_config(config);
  event_config_free(config);
  if (base_ == nullptr) return;
  service_ = std::make_unique<MockService>(options_.service, log, base_);
  service_->set_on_idle([this] { ExitWhenIdle(); });
  http_ = evhttp_new(base_);
  evhttp_set_allowed_methods(http_, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                        EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
                                        EVHTTP_REQ_PATCH);
  evhttp_set_gencb(http_, &MockServer::OnRequest, this);
  if (tls_ != nullptr) {
    h2_ = std::make_unique<H2Server>(service_.get(), tls_.get(), [this] { ExitWhenIdle(); });
    evhttp_set_bevcb(http_, &MockServer::NewTlsBufferevent, this);
  }
  // Taken from here on, so a signal sent as soon as the port is printed
  // still stops the server cleanly.
  sigterm_ = evsignal_new(base_, SIGTERM, &MockServer::OnSignal, this);
  sigint_ = evsignal_new(base_, SIGINT, &MockServer::OnSignal, this);
  evsignal_add(sigterm_, nullptr);
  evsignal_add(sigint_, nullptr);
}

MockServer::~MockServer() {
  // The requests first: their exchanges refer to connections and streams.
  service_.reset();
  // Then nothing may log or write once evhttp frees the connections (and,
  // with the loop, the HTTP/2 sessions).
  if (h2_ != nullptr) h2_->Detach();
  for (event* e : {sigterm_, sigint_, grace_}) {
    if (e != nullptr) event_free(e);
  }
  if (http_ != nullptr) evhttp_free(http_);
  if (base_ != nullptr) event_base_free(base_);
}

int MockServer::Bind(std::string* error) {
  const std::string where = options_.host + ":" + std::to_string(options_.port);
  if (http_ == nullptr) {
    *error = "cannot start an event loop with EV_CLOSED support";
    return -1;
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(options_.port);
  if (int rc = getaddrinfo(options_.host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    *error = "cannot listen on " + where + ": " + gai_strerror(rc);
    return -1;
  }
  int fd = -1;
  int saved = 0;
  for (addrinfo* a = found; a != nullptr && fd < 0; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    // SO_REUSEADDR allows a quick restart on a fixed port; no SO_REUSEPORT,
    // which would let a second server silently share it.
    int yes = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    if (bind(fd, a->ai_addr, a->ai_addrlen) != 0 || listen(fd, kBacklog) != 0) {
      saved = errno;
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(found);
  if (fd < 0) {
    *error = "cannot listen on " + where + ": " + std::strerror(saved);
    return -1;
  }
  sockaddr_storage local{};
  socklen_t len = sizeof local;
  getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len);
  listener_ = evhttp_accept_socket_with_handle(http_, fd);
  if (listener_ == nullptr) {
    close(fd);
    *error = "cannot listen on " + where;
    return -1;
  }
  return local.ss_family == AF_INET6
             ? ntohs(reinterpret_cast<const sockaddr_in6*>(&local)->sin6_port)
             : ntohs(reinterpret_cast<const sockaddr_in*>(&local)->sin_port);
}

bool MockServer::Run() {
  if (base_ == nullptr || listener_ == nullptr) return false;
  return event_base_dispatch(base_) >= 0;
}

bufferevent* MockServer::NewTlsBufferevent(event_base* base, void* self) {
  return static_cast<MockServer*>(self)->h2_->NewBufferevent(base);
}

void MockServer::OnSignal(int, short, void* self) { static_cast<MockServer*>(self)->Stop(); }

void MockServer::OnGraceOver(int, short, void* self) {
  event_base_loopbreak(static_cast<MockServer*>(self)->base_);
}

void MockServer::Stop() {
  if (service_->stopping()) return;
  evhttp_del_accept_socket(http_, listener_);
  listener_ = nullptr;
  if (h2_ != nullptr) h2_->Stop();
  service_->Stop();
  grace_ = evtimer_new(base_, &MockServer::OnGraceOver, this);
  evtimer_add(grace_, &kGrace);
  ExitWhenIdle();
}

void MockServer::ExitWhenIdle() {
  if (service_->stopping() && service_->idle() && (h2_ == nullptr || h2_->Flushed())) {
    event_base_loopexit(base_, nullptr);
  }
}

void MockServer::OnRequest(evhttp_request* req, void* self) {
  auto* server = static_cast<MockServer*>(self);
  Request request;
  switch (evhttp_request_get_command(req)) {
    case EVHTTP_REQ_GET:
      request.method = Method::kGet;
      break;
    case EVHTTP_REQ_POST:
      request.method = Method::kPost;
      break;
    default:
      break;
  }
  const char* path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
  request.path = path == nullptr ? "/" : path;
  evkeyvalq* headers = evhttp_request_get_input_headers(req);
  const char* authorization = evhttp_find_header(headers, "Authorization");
  const char* api_key = evhttp_find_header(headers, "x-api-key");
  request.auth = authorization != nullptr || api_key != nullptr;
  request.authorization = authorization == nullptr ? "" : authorization;
  request.api_key = api_key == nullptr ? "" : api_key;
  MockDialect dialect = MockDialect::kOpenAI;
  if (auto answer = server->service_->Route(request, &dialect)) {
    return Reply(req, answer->status, answer->body);
  }
  request.body = Body(req);
  server->service_->StartChat(
      std::make_unique<HttpExchange>(req, server->base_, server->tls_ != nullptr), request,
      dialect);
}

}  // namespace keel::mock
