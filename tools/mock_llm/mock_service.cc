#include "tools/mock_llm/mock_service.h"

#include <event2/event.h>

#include <cmath>
#include <cstdio>
#include <utility>

namespace keel::mock {
namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr const char* kJson = "application/json";

const char* kModels =
    R"({"object":"list","data":[{"id":"mock","object":"model","type":"model",)"
    R"("created":1700000000,"owned_by":"keel","display_name":"keel mock"}],"has_more":false})";

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

std::string ErrorJson(const std::string& message, const char* type) {
  return R"({"error":{"message":")" + message + R"(","type":")" + type + R"("}})";
}

// What goes on the wire for `reply` to chat request `id`.
Response ResponseFor(const MockReply& reply, int64_t id) {
  Response r;
  r.status = reply.status;
  r.body = reply.body;
  r.headers.push_back({"Content-Type", kJson});
  r.headers.push_back({"x-mock-request-id", std::to_string(id)});
  if (reply.retry_after >= 0) {
    r.headers.push_back({"Retry-After", RetryAfterText(reply.retry_after)});
    r.headers.push_back({"retry-after-ms", std::to_string(std::llround(reply.retry_after * 1000))});
  }
  if (reply.fault == "truncated") {
    // Content-Length announces about twice what is sent.
    r.truncated = true;
    r.headers.push_back({"Content-Length", std::to_string(reply.body.size() * 2 + 1)});
  }
  return r;
}

}  // namespace

ChatExchange::~ChatExchange() {
  if (wait_ != nullptr) event_free(wait_);
}

void ChatExchange::Ended(const char* outcome) { service_->End(this, outcome); }

MockService::MockService(MockServiceOptions options, RequestLog* log, event_base* base)
    : options_(std::move(options)), log_(log), base_(base), plan_(options_.faults) {}

MockService::~MockService() = default;

std::optional<MockService::Answer> MockService::Route(const Request& request,
                                                      MockDialect* dialect) {
  const std::string& path = request.path;
  const bool get = request.method == Method::kGet;
  const std::string route = path.rfind("/v1/", 0) == 0 ? path.substr(3) : path;
  if (route == "/chat/completions" || route == "/messages") {
    if (request.method != Method::kPost) {
      return Answer{405, ErrorJson("use POST for " + path, "invalid_request_error")};
    }
    *dialect = route == "/messages" ? MockDialect::kAnthropic : MockDialect::kOpenAI;
    return std::nullopt;
  }
  if (route == "/models" && get) return Answer{200, kModels};
  if (path == "/healthz" && get) {
    return Answer{200, R"({"status":"ok","requests":)" + std::to_string(requests_) +
                           R"(,"in_flight":)" + std::to_string(pending_.size()) + "}"};
  }
  if (path == "/log" && get) return Answer{200, log_->JsonArray()};
  return Answer{404, ErrorJson("no such endpoint: " + path, "not_found_error")};
}

MockReply MockService::ReplyTo(const Request& request, MockDialect dialect,
                               const std::string& fault) {
  const std::string& key = options_.require_key;
  if (!key.empty() && request.authorization != "Bearer " + key && request.api_key != key) {
    return MockFaultReply(dialect, "401", "", 0);
  }
  MockReply reply = responder_.Respond(request.body, dialect);
  if (reply.status != 200 || !reply.fault.empty() || fault.empty()) return reply;
  MockReply injected = MockFaultReply(dialect, fault, reply.body, options_.retry_after);
  injected.latency = reply.latency;
  injected.model = std::move(reply.model);
  injected.user = std::move(reply.user);
  return injected;
}

void MockService::StartChat(std::unique_ptr<ChatExchange> exchange, const Request& request,
                            MockDialect dialect) {
  ChatExchange* x = exchange.get();
  pending_.emplace(x, std::move(exchange));
  x->service_ = this;
  x->start_ = SteadyClock::now();
  LogEntry& e = x->entry_;
  e.id = ++requests_;
  e.ts = WallSeconds();
  e.path = request.path;
  e.protocol = request.protocol;
  e.auth = request.auth;
  const FaultPlan::Draw draw = plan_.Next(e.id);
  x->reply_ = ReplyTo(request, dialect, draw.fault);
  const MockReply& reply = x->reply_;
  e.model = reply.model;
  e.user = CutUtf8(reply.user, 200);
  e.status = reply.status;
  e.fault = reply.fault.empty() && reply.status != 200 ? std::to_string(reply.status) : reply.fault;
  e.latency_ms = draw.latency_ms + reply.latency * 1000;

  const bool hang = reply.fault == "hang";
  if (stopping_ || (!hang && e.latency_ms <= 0)) return Proceed(x);
  x->WatchClient();
  if (hang) return;
  x->wait_ = evtimer_new(base_, &MockService::OnWaited, x);
  if (!Wait(x)) Proceed(x);
}

bool MockService::Wait(ChatExchange* x) {
  const double left_ms =
      x->entry_.latency_ms -
      std::chrono::duration<double, std::milli>(SteadyClock::now() - x->start_).count();
  if (left_ms <= 0) return false;
  // The loop's cached time is from before this request was handled.
  event_base_update_cache_time(base_);
  const timeval delay = ToTimeval(left_ms);
  evtimer_add(x->wait_, &delay);
  return true;
}

void MockService::OnWaited(int, short, void* exchange) {
  auto* x = static_cast<ChatExchange*>(exchange);
  // Never early, whatever the loop's clock says.
  if (!x->service_->Wait(x)) x->service_->Proceed(x);
}

void MockService::Proceed(ChatExchange* x) {
  if (x->wait_ != nullptr) event_free(x->wait_);
  x->wait_ = nullptr;
  const std::string& fault = x->reply_.fault;
  if (fault == "hang") {
    // Only a stop ends a hang from this side.
    if (!stopping_) return;
    x->Abort(false);
    return End(x, "hang_closed");
  }
  if (fault == "reset") {
    x->Abort(true);
    return End(x, "reset");
  }
  // The last use of x here: Respond may end it at once.
  x->Respond(ResponseFor(x->reply_, x->entry_.id));
}

void MockService::Stop() {
  if (stopping_) return;
  stopping_ = true;
  // Proceed may end requests (and so change pending_): walk a copy.
  std::vector<ChatExchange*> waiting;
  for (const auto& [x, owned] : pending_) {
    if (x->wait_ != nullptr || x->reply_.fault == "hang") waiting.push_back(x);
  }
  for (ChatExchange* x : waiting) Proceed(x);
}

void MockService::End(ChatExchange* x, const char* outcome) {
  LogEntry& e = x->entry_;
  e.outcome = outcome;
  e.duration_ms = std::chrono::duration<double, std::milli>(SteadyClock::now() - x->start_).count();
  log_->Add(e);
  pending_.erase(x);
  if (stopping_ && pending_.empty() && on_idle_) on_idle_();
}

}  // namespace keel::mock
