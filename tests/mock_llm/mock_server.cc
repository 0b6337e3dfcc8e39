#include "tests/mock_llm/mock_server.h"

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
#include <cmath>
#include <cstdio>
#include <cstring>
#include <utility>

namespace keel::mock {
namespace {

using SteadyClock = std::chrono::steady_clock;

// A burst of hundreds of connects must not wait for SYN retries.
constexpr int kBacklog = 4096;

// How long a stopped server waits for answers still being written.
constexpr timeval kGrace{2, 0};

constexpr const char* kJson = "application/json";

double WallSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Seconds as Retry-After text: "2", or "0.5" when not whole.
std::string RetryAfterText(double seconds) {
  char buf[32];
  if (seconds == std::floor(seconds)) {
    std::snprintf(buf, sizeof buf, "%.0f", seconds);
  } else {
    std::snprintf(buf, sizeof buf, "%.3f", seconds);
    std::string text = buf;
    return text.substr(0, text.find_last_not_of('0') + 1);
  }
  return buf;
}

timeval ToTimeval(double ms) {
  const auto us = static_cast<long long>(std::ceil(ms * 1000));
  return timeval{static_cast<time_t>(us / 1000000), static_cast<suseconds_t>(us % 1000000)};
}

const char* kModels =
    R"({"object":"list","data":[{"id":"mock","object":"model","type":"model",)"
    R"("created":1700000000,"owned_by":"keel","display_name":"keel mock"}],"has_more":false})";

std::string Header(evhttp_request* req, const char* name) {
  const char* value = evhttp_find_header(evhttp_request_get_input_headers(req), name);
  return value == nullptr ? "" : value;
}

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

std::string ErrorJson(const std::string& message, const char* type) {
  return R"({"error":{"message":")" + message + R"(","type":")" + type + R"("}})";
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

// One chat request from its arrival to its end (answered, dropped, or its
// client gone). Lives in MockServer::pending_; touched on the loop only.
struct MockServer::Pending {
  MockServer* server = nullptr;
  evhttp_request* req = nullptr;  // freed by libevent when the request ends
  evhttp_connection* connection = nullptr;
  LogEntry entry;
  SteadyClock::time_point start;
  MockReply reply;
  std::string outcome = "answered";  // what a completed write is logged as
  event* wait = nullptr;             // the latency timer
  event* watch = nullptr;            // the client closing the socket meanwhile

  ~Pending() { StopWaiting(); }

  void StopWaiting() {
    if (wait != nullptr) event_free(wait);
    if (watch != nullptr) event_free(watch);
    wait = watch = nullptr;
  }
};

MockServer::MockServer(MockServerOptions options, RequestLog* log)
    : options_(std::move(options)), log_(log), plan_(options_.faults) {
  event_config* config = event_config_new();
  // The client-close watch needs EV_CLOSED (epoll's EPOLLRDHUP).
  event_config_require_features(config, EV_FEATURE_EARLY_CLOSE);
  // Timers on the precise monotonic clock: a coarse one fires latencies up
  // to a tick early.
  event_config_set_flag(config, EVENT_BASE_FLAG_PRECISE_TIMER);
  base_ = event_base_new_with_config(config);
  event_config_free(config);
  if (base_ == nullptr) return;
  http_ = evhttp_new(base_);
  evhttp_set_allowed_methods(http_, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                        EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
                                        EVHTTP_REQ_PATCH);
  evhttp_set_gencb(http_, &MockServer::OnRequest, this);
  // Taken from here on, so a signal sent as soon as the port is printed
  // still stops the server cleanly.
  sigterm_ = evsignal_new(base_, SIGTERM, &MockServer::OnSignal, this);
  sigint_ = evsignal_new(base_, SIGINT, &MockServer::OnSignal, this);
  evsignal_add(sigterm_, nullptr);
  evsignal_add(sigint_, nullptr);
}

MockServer::~MockServer() {
  pending_.clear();
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

void MockServer::OnSignal(int, short, void* self) { static_cast<MockServer*>(self)->Stop(); }

void MockServer::OnGraceOver(int, short, void* self) {
  event_base_loopbreak(static_cast<MockServer*>(self)->base_);
}

void MockServer::Stop() {
  if (stopping_) return;
  stopping_ = true;
  evhttp_del_accept_socket(http_, listener_);
  listener_ = nullptr;
  // Proceed may end requests (and so change pending_): walk a copy.
  std::vector<Pending*> waiting;
  for (const auto& [p, owned] : pending_) {
    if (p->wait != nullptr || p->reply.fault == "hang") waiting.push_back(p);
  }
  for (Pending* p : waiting) Proceed(p);
  grace_ = evtimer_new(base_, &MockServer::OnGraceOver, this);
  evtimer_add(grace_, &kGrace);
  ExitWhenIdle();
}

void MockServer::ExitWhenIdle() {
  if (stopping_ && pending_.empty()) event_base_loopexit(base_, nullptr);
}

void MockServer::OnRequest(evhttp_request* req, void* self) {
  static_cast<MockServer*>(self)->Route(req);
}

void MockServer::Route(evhttp_request* req) {
  const char* raw_path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
  std::string path = raw_path == nullptr ? "/" : raw_path;
  const bool get = evhttp_request_get_command(req) == EVHTTP_REQ_GET;
  const bool post = evhttp_request_get_command(req) == EVHTTP_REQ_POST;
  const std::string route = path.rfind("/v1/", 0) == 0 ? path.substr(3) : path;
  if (route == "/chat/completions" || route == "/messages") {
    if (!post) return Reply(req, 405, ErrorJson("use POST for " + path, "invalid_request_error"));
    return Chat(req, route == "/messages" ? MockDialect::kAnthropic : MockDialect::kOpenAI);
  }
  if (route == "/models" && get) return Reply(req, 200, kModels);
  if (path == "/healthz" && get) {
    return Reply(req, 200,
                 R"({"status":"ok","requests":)" + std::to_string(requests_) + R"(,"in_flight":)" +
                     std::to_string(pending_.size()) + "}");
  }
  if (path == "/log" && get) return Reply(req, 200, log_->JsonArray());
  Reply(req, 404, ErrorJson("no such endpoint: " + path, "not_found_error"));
}

MockReply MockServer::ReplyTo(evhttp_request* req, const std::string& body, MockDialect dialect,
                              const std::string& fault) {
  const std::string& key = options_.require_key;
  if (!key.empty() && Header(req, "Authorization") != "Bearer " + key &&
      Header(req, "x-api-key") != key) {
    return MockFaultReply(dialect, "401", "", 0);
  }
  MockReply reply = responder_.Respond(body, dialect);
  if (reply.status != 200 || !reply.fault.empty() || fault.empty()) return reply;
  MockReply injected = MockFaultReply(dialect, fault, reply.body, options_.retry_after);
  injected.latency = reply.latency;
  injected.model = std::move(reply.model);
  injected.user = std::move(reply.user);
  return injected;
}

void MockServer::Chat(evhttp_request* req, MockDialect dialect) {
  auto owned = std::make_unique<Pending>();
  Pending* p = owned.get();
  pending_.emplace(p, std::move(owned));
  p->server = this;
  p->req = req;
  p->connection = evhttp_request_get_connection(req);
  p->start = SteadyClock::now();
  LogEntry& e = p->entry;
  e.id = ++requests_;
  e.ts = WallSeconds();
  e.path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
  e.auth = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization") != nullptr ||
           evhttp_find_header(evhttp_request_get_input_headers(req), "x-api-key") != nullptr;
  const FaultPlan::Draw draw = plan_.Next(e.id);
  p->reply = ReplyTo(req, Body(req), dialect, draw.fault);
  const MockReply& reply = p->reply;
  e.model = reply.model;
  e.user = CutUtf8(reply.user, 200);
  e.status = reply.status;
  e.fault = reply.fault.empty() && reply.status != 200 ? std::to_string(reply.status) : reply.fault;
  e.latency_ms = draw.latency_ms + reply.latency * 1000;

  const bool hang = reply.fault == "hang";
  if (stopping_ || (!hang && e.latency_ms <= 0)) return Proceed(p);
  p->watch = event_new(base_, SocketOf(req), EV_READ | EV_CLOSED | EV_PERSIST,
                       &MockServer::OnClientClosed, p);
  event_add(p->watch, nullptr);
  if (hang) return;
  p->wait = evtimer_new(base_, &MockServer::OnWaited, p);
  if (!Wait(p)) Proceed(p);
}

bool MockServer::Wait(Pending* p) {
  const double left_ms =
      p->entry.latency_ms -
      std::chrono::duration<double, std::milli>(SteadyClock::now() - p->start).count();
  if (left_ms <= 0) return false;
  // The loop's cached time is from before this request was handled.
  event_base_update_cache_time(base_);
  const timeval delay = ToTimeval(left_ms);
  evtimer_add(p->wait, &delay);
  return true;
}

void MockServer::OnWaited(int, short, void* pending) {
  auto* p = static_cast<Pending*>(pending);
  // Never early, whatever the loop's clock says.
  if (!p->server->Wait(p)) p->server->Proceed(p);
}

void MockServer::OnClientClosed(int fd, short, void* pending) {
  auto* p = static_cast<Pending*>(pending);
  char byte;
  const ssize_t n = recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n > 0) {
    // More bytes (a pipelined request), not a close: stop watching rather
    // than wake up for them again and again.
    event_free(p->watch);
    p->watch = nullptr;
    return;
  }
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
  p->server->Drop(p, false, "client_closed");
}

void MockServer::Proceed(Pending* p) {
  p->StopWaiting();
  const std::string& fault = p->reply.fault;
  if (fault == "hang") {
    // Only a stop ends a hang from this side.
    if (stopping_) Drop(p, false, "hang_closed");
    return;
  }
  if (fault == "reset") return Drop(p, true, "reset");
  Send(p);
}

void MockServer::Send(Pending* p) {
  const MockReply& reply = p->reply;
  evkeyvalq* headers = evhttp_request_get_output_headers(p->req);
  evhttp_add_header(headers, "Content-Type", kJson);
  evhttp_add_header(headers, "x-mock-request-id", std::to_string(p->entry.id).c_str());
  if (reply.retry_after >= 0) {
    evhttp_add_header(headers, "Retry-After", RetryAfterText(reply.retry_after).c_str());
    evhttp_add_header(headers, "retry-after-ms",
                      std::to_string(std::llround(reply.retry_after * 1000)).c_str());
  }
  if (reply.fault == "truncated") {
    // Content-Length announces about twice what is sent, then the
    // connection closes.
    p->outcome = "truncated";
    evhttp_add_header(headers, "Content-Length", std::to_string(reply.body.size() * 2 + 1).c_str());
    evhttp_add_header(headers, "Connection", "close");
  }
  evhttp_request_set_on_complete_cb(p->req, &MockServer::OnSent, p);
  evhttp_connection_set_closecb(p->connection, &MockServer::OnConnectionGone, p);
  evbuffer* out = evbuffer_new();
  evbuffer_add(out, reply.body.data(), reply.body.size());
  evhttp_send_reply(p->req, reply.status, nullptr, out);
  evbuffer_free(out);
}

void MockServer::OnSent(evhttp_request*, void* pending) {
  auto* p = static_cast<Pending*>(pending);
  evhttp_connection_set_closecb(p->connection, nullptr, nullptr);
  p->server->End(p, p->outcome);
}

void MockServer::OnConnectionGone(evhttp_connection* connection, void* pending) {
  auto* p = static_cast<Pending*>(pending);
  evhttp_connection_set_closecb(connection, nullptr, nullptr);
  p->server->End(p, "client_closed");
}

void MockServer::Drop(Pending* p, bool reset, const std::string& outcome) {
  p->StopWaiting();
  if (reset) ResetSocket(SocketOf(p->req));
  // Frees the request too; no answer goes out.
  evhttp_connection_free(p->connection);
  End(p, outcome);
}

void MockServer::End(Pending* p, const std::string& outcome) {
  LogEntry& e = p->entry;
  e.outcome = outcome;
  e.duration_ms = std::chrono::duration<double, std::milli>(SteadyClock::now() - p->start).count();
  log_->Add(e);
  pending_.erase(p);
  ExitWhenIdle();
}

}  // namespace keel::mock
