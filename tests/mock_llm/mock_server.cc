#include "tests/mock_llm/mock_server.h"

#include <sys/socket.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <thread>
#include <utility>

#include "tests/mock_llm/client_connection.h"
#include "tests/mock_llm/elastic_pool.h"

namespace keel::mock {
namespace {

using SteadyClock = std::chrono::steady_clock;

// cpp-httplib listens with a backlog of 5; a burst of hundreds of connects
// would then wait for SYN retries.
constexpr int kBacklog = 4096;

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

const char* kModels =
    R"({"object":"list","data":[{"id":"mock","object":"model","type":"model",)"
    R"("created":1700000000,"owned_by":"keel","display_name":"keel mock"}],"has_more":false})";

}  // namespace

// One chat request on its way: what will be logged when it ends.
struct MockServer::Pending {
  LogEntry entry;
  SteadyClock::time_point start;
  std::string outcome = "answered";  // "answered" becomes client_closed if the write fails
};

MockServer::MockServer(MockServerOptions options, RequestLog* log)
    : options_(std::move(options)), log_(log), plan_(options_.faults) {
  auto chat = [this](MockDialect dialect) {
    return [this, dialect](const httplib::Request& req, httplib::Response& res) {
      Chat(req, res, dialect);
    };
  };
  server_.Post("(/v1)?/chat/completions", chat(MockDialect::kOpenAI));
  server_.Post("(/v1)?/messages", chat(MockDialect::kAnthropic));
  server_.Get("(/v1)?/models", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(kModels, kJson);
  });
  server_.Get("/healthz", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"status":"ok","requests":)" + std::to_string(requests_.load()) +
                        R"(,"in_flight":)" + std::to_string(in_flight_.load()) + "}",
                    kJson);
  });
  server_.Get("/log", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(log_->JsonArray(), kJson);
  });
}

int MockServer::Bind(std::string* error) {
  const int threads = options_.threads;
  server_.new_task_queue = [threads] { return new ElasticPool(threads); };
  // The library's default adds SO_REUSEPORT, which would let a second server
  // silently share a fixed port; SO_REUSEADDR alone still allows a quick restart.
  server_.set_socket_options([this](socket_t fd) {
    int yes = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    listen_fd_ = fd;
  });
  // Headers and body go out in separate writes; without TCP_NODELAY the body
  // of a reply on a reused connection waits for the client's delayed ACK.
  server_.set_tcp_nodelay(true);
  server_.set_keep_alive_max_count(1000000);
  int port = options_.port;
  if (port == 0) {
    port = server_.bind_to_any_port(options_.host);
  } else if (!server_.bind_to_port(options_.host, port)) {
    port = -1;
  }
  if (port < 0) {
    *error = "cannot listen on " + options_.host + ":" + std::to_string(options_.port) + ": " +
             std::strerror(errno);
    return -1;
  }
  listen(listen_fd_, kBacklog);
  return port;
}

bool MockServer::Run() {
  run_state_ = RunState::kStarting;
  if (stopping_) return true;
  const bool ok = server_.listen_after_bind();
  run_state_ = RunState::kDone;
  return ok;
}

void MockServer::Stop() {
  stopping_ = true;
  // stop() acts only on a listening server: wait until Run has started it.
  while (run_state_ == RunState::kStarting && !server_.is_running()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  server_.stop();
}

bool MockServer::Authorized(const httplib::Request& req) const {
  const std::string& key = options_.require_key;
  if (key.empty()) return true;
  return req.get_header_value("Authorization") == "Bearer " + key ||
         req.get_header_value("x-api-key") == key;
}

MockReply MockServer::ReplyTo(const httplib::Request& req, MockDialect dialect,
                              const std::string& fault) {
  if (!Authorized(req)) return MockFaultReply(dialect, "401", "", 0);
  MockReply reply = responder_.Respond(req.body, dialect);
  if (reply.status != 200 || !reply.fault.empty() || fault.empty()) return reply;
  MockReply injected = MockFaultReply(dialect, fault, reply.body, options_.retry_after);
  injected.latency = reply.latency;
  injected.model = std::move(reply.model);
  injected.user = std::move(reply.user);
  return injected;
}

void MockServer::Chat(const httplib::Request& req, httplib::Response& res, MockDialect dialect) {
  auto pending = std::make_shared<Pending>();
  pending->start = SteadyClock::now();
  LogEntry& e = pending->entry;
  e.id = ++requests_;
  ++in_flight_;
  e.ts = WallSeconds();
  e.path = req.path;
  e.auth = req.has_header("Authorization") || req.has_header("x-api-key");
  const FaultPlan::Draw draw = plan_.Next(e.id);

  MockReply reply = ReplyTo(req, dialect, draw.fault);
  e.model = reply.model;
  e.user = CutUtf8(reply.user, 200);
  e.status = reply.status;
  e.fault = reply.fault.empty() && reply.status != 200 ? std::to_string(reply.status) : reply.fault;
  e.latency_ms = draw.latency_ms + reply.latency * 1000;

  const bool hang = reply.fault == "hang";
  std::optional<ClientConnection> connection;
  if (hang || reply.fault == "reset" || e.latency_ms > 0) connection.emplace(req);
  auto end = ClientConnection::WaitEnd::kElapsed;
  if (hang) {
    end = connection->Wait(std::nullopt, stopping_);
  } else if (e.latency_ms > 0) {
    const auto wait = std::chrono::duration_cast<SteadyClock::duration>(
        std::chrono::duration<double, std::milli>(e.latency_ms));
    end = connection->Wait(pending->start + wait, stopping_);
  }

  res.set_header("x-mock-request-id", std::to_string(e.id));
  if (end == ClientConnection::WaitEnd::kClientClosed || hang || reply.fault == "reset") {
    pending->outcome = end == ClientConnection::WaitEnd::kClientClosed ? "client_closed"
                       : hang                                          ? "hang_closed"
                                                                       : "reset";
    connection->Drop(reply.fault == "reset");
    // Nothing more reaches the client; the library only needs a response.
    res.status = 500;
    Answer(res, " ", 0, std::move(pending));
    return;
  }
  res.status = reply.status;
  if (reply.retry_after >= 0) {
    res.set_header("Retry-After", RetryAfterText(reply.retry_after));
    res.set_header("retry-after-ms", std::to_string(std::llround(reply.retry_after * 1000)));
  }
  size_t sent = reply.body.size();
  if (reply.fault == "truncated") {
    // Content-Length announces about twice what is sent.
    pending->outcome = "truncated";
    reply.body.resize(reply.body.size() * 2 + 1, ' ');
  }
  Answer(res, reply.body, sent, std::move(pending));
}

void MockServer::Answer(httplib::Response& res, const std::string& body, size_t sent,
                        std::shared_ptr<Pending> pending) {
  auto text = std::make_shared<const std::string>(body);
  res.set_content_provider(
      text->size(), kJson,
      [text, sent](size_t offset, size_t, httplib::DataSink& sink) {
        if (offset == 0 && sent > 0 && !sink.write(text->data(), sent)) return false;
        return sent == text->size();
      },
      [this, pending](bool success) {
        LogEntry& e = pending->entry;
        e.outcome = pending->outcome == "answered" && !success ? "client_closed" : pending->outcome;
        e.duration_ms =
            std::chrono::duration<double, std::milli>(SteadyClock::now() - pending->start).count();
        log_->Add(e);
        --in_flight_;
      });
}

}  // namespace keel::mock
