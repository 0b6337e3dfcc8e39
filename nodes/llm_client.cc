#include "nodes/llm_client.h"

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/mutex.h"
#include "nodes/llm_call_recording.h"
#include "nodes/provider.h"
#include "nodes/trim.h"
#include "nodes/wire_json.h"

namespace keel {
namespace {

// The host (and port) of `url`, "https://api.example.com:8443/v1" ->
// "api.example.com:8443"; "" when it has no "://".
std::string HostOf(std::string_view url) {
  size_t scheme = url.find("://");
  if (scheme == std::string_view::npos) return "";
  std::string_view rest = url.substr(scheme + 3);
  rest = rest.substr(0, rest.find_first_of("/?#"));
  size_t at = rest.rfind('@');  // user:password@host: never the credentials
  if (at != std::string_view::npos) rest = rest.substr(at + 1);
  return std::string(rest);
}

// Completion tokens assumed for the gate's estimate when a request sets no max_tokens.
constexpr int64_t kDefaultReplyTokens = 512;

// A declared provider: its config, wire format (null for mock) and gate.
// Immutable after AddProvider; shared with the calls in flight.
struct ProviderSlot {
  ProviderConfig config;
  const Provider* wire = nullptr;
  std::shared_ptr<ProviderGate> gate;
};

int64_t EstimateTokens(const ChatRequest& request) {
  size_t chars = request.system.size() + request.messages_json.size() + request.schema_json.size();
  for (const ToolSpec& tool : request.tools) {
    chars += tool.name.size() + tool.description.size() + tool.parameters_json.size();
  }
  return static_cast<int64_t>((chars + 3) / 4) + request.max_tokens.value_or(kDefaultReplyTokens);
}

bool IsJsonOf(const std::string& text, rapidjson::Type type) {
  return wire::JsonTypeOf(text) == type;
}

// Catches what the wire formats assume (their Build cannot fail).
Status CheckRequest(const ChatRequest& request) {
  if (!IsJsonOf(request.messages_json, rapidjson::kArrayType)) {
    return Status::Error(ErrorKind::kPermanent, "the messages are not a JSON array");
  }
  for (const ToolSpec& tool : request.tools) {
    if (!IsJsonOf(tool.parameters_json, rapidjson::kObjectType)) {
      return Status::Error(ErrorKind::kPermanent,
                           "the parameters of tool '" + tool.name + "' are not a JSON object");
    }
  }
  if (request.output == OutputMode::kSchema &&
      !IsJsonOf(request.schema_json, rapidjson::kObjectType)) {
    return Status::Error(ErrorKind::kPermanent, "the output schema is not a JSON object");
  }
  return Status::Ok();
}

// The response a server would have sent for `reply` (not a hang or a reset).
HttpResponse MockHttpResponse(const MockReply& reply) {
  HttpResponse response;
  response.status = reply.status;
  response.body = reply.body;
  if (reply.retry_after >= 0) {
    if (reply.retry_after == std::floor(reply.retry_after)) {
      response.headers.emplace_back("retry-after",
                                    std::to_string(static_cast<int64_t>(reply.retry_after)));
    } else {
      response.headers.emplace_back("retry-after-ms",
                                    std::to_string(static_cast<int64_t>(reply.retry_after * 1000)));
    }
  }
  return response;
}

// One call from Call to `done`. Owned by shared_ptrs held by whatever may
// still complete it (the gate, the HTTP loop, the mock's timers, the cancel
// token's subscription); the first to Finish wins (completed_), the others
// do nothing. Methods run on the calling, I/O or timer thread, or on the
// thread that cancels the token.
class LlmCall : public std::enable_shared_from_this<LlmCall> {
 public:
  LlmCall(Clock* clock, HttpLoop* loop, MockResponder* mock,
          std::shared_ptr<const ProviderSlot> slot, ChatRequest request, std::string key,
          const CancelToken* cancel, double deadline, LlmDone done, double start, bool checked)
      : clock_(clock),
        loop_(loop),
        mock_(mock),
        slot_(std::move(slot)),
        request_(std::move(request)),
        key_(std::move(key)),
        cancel_(cancel),
        deadline_(deadline),
        done_(std::move(done)),
        start_(start),
        checked_(checked),
        estimate_(EstimateTokens(request_)) {}

  void Start() {
    auto self = shared_from_this();
    slot_->gate->Acquire(estimate_, cancel_, deadline_,
                         [self](Status admitted) { self->Admitted(std::move(admitted)); });
  }

  // Ends the call with `failure`: no tokens used, no HTTP status.
  void Fail(Status failure) { Finish(std::move(failure), 0, Usage()); }

 private:
  void Admitted(Status admitted) {
    queued_ = clock_->Now() - start_;
    if (!admitted.ok()) return Fail(std::move(admitted));
    admitted_ = true;
    rate_limit_warning_ = slot_->gate->TakeWarning();
    if (cancel_ != nullptr && cancel_->cancelled()) {
      return Fail(Status::Error(ErrorKind::kCancelled, "cancelled"));
    }
    if (deadline_ > 0 && clock_->Now() >= deadline_) {
      return Fail(Status::Error(ErrorKind::kTimeout, "timed out"));
    }
    if (slot_->wire == nullptr) return RunMock();
    SendHttp();
  }

  void SendHttp() {
    if (loop_ == nullptr) {
      return Fail(Status::Error(ErrorKind::kPermanent, "no HTTP loop to send the request"));
    }
    HttpRequest http = slot_->wire->Build(slot_->config, request_, key_);
    http.deadline = deadline_;
    http.cancel = cancel_;
    http.ca_file = slot_->config.ca_file;
    http.http2 = slot_->config.http2;
    auto self = shared_from_this();
    loop_->Send(std::move(http), [self](HttpResponse response) {
      self->Complete(std::move(response), /*record_status=*/true);
    });
  }

  // The mock answers after its latency unless the deadline or the token
  // ends the call first.
  void RunMock() {
    std::string body = ProviderFor("openai")->Build(slot_->config, request_, "").body;
    MockReply reply = mock_->Respond(body, MockDialect::kOpenAI);
    auto self = shared_from_this();
    if (deadline_ > 0) {
      Arm(deadline_ - clock_->Now(),
          [self] { self->Fail(Status::Error(ErrorKind::kTimeout, "timed out")); });
    }
    WatchCancel();
    if (reply.fault == "hang") return;
    Arm(slot_->config.latency + reply.latency, [self, reply] { self->DeliverMock(reply); });
  }

  void DeliverMock(const MockReply& reply) {
    if (reply.fault == "reset" || reply.fault == "truncated") {
      return Fail(Status::Error(ErrorKind::kTransient, "connection reset by the mock"));
    }
    Complete(MockHttpResponse(reply), /*record_status=*/false);
  }

  void Arm(double seconds, std::function<void()> fn) {
    TimerId id = clock_->After(seconds, std::move(fn));
    {
      MutexLock lock(&mu_);
      if (!waits_stopped_) {
        timers_.push_back(id);
        return;
      }
    }
    clock_->Cancel(id);
  }

  void WatchCancel() {
    if (cancel_ == nullptr) return;
    auto self = shared_from_this();
    uint64_t id = cancel_->Subscribe(
        [self] { self->Fail(Status::Error(ErrorKind::kCancelled, "cancelled")); });
    {
      MutexLock lock(&mu_);
      if (!waits_stopped_) {
        subscription_ = id;
        return;
      }
    }
    if (id != 0) cancel_->Unsubscribe(id);
  }

  // Cancels the mock's timers and the token subscription; later Arm and
  // WatchCancel calls undo themselves.
  void StopWaits() {
    std::vector<TimerId> timers;
    uint64_t subscription = 0;
    {
      MutexLock lock(&mu_);
      waits_stopped_ = true;
      timers.swap(timers_);
      std::swap(subscription, subscription_);
    }
    for (TimerId id : timers) clock_->Cancel(id);
    if (subscription != 0) cancel_->Unsubscribe(subscription);
  }

  // Maps and parses a response (the body redacted first, so no excerpt can
  // carry a piece of the key).
  void Complete(HttpResponse response, bool record_status) {
    response.body = Redact(std::move(response.body), key_);
    Usage used;
    Result<ChatResponse> result = Interpret(response, &used);
    Finish(std::move(result), record_status ? response.status : 0, used);
  }

  Result<ChatResponse> Interpret(const HttpResponse& response, Usage* used) {
    const Provider* wire = slot_->wire != nullptr ? slot_->wire : ProviderFor("openai");
    double wall_now = clock_->WallNow();
    if (Status failure = wire::NotSuccess(response, slot_->config.name, wall_now); !failure.ok()) {
      return failure;
    }
    Result<ChatResponse> parsed = wire->Parse(response, wall_now);
    if (!parsed.ok()) return parsed;
    *used = parsed->usage;
    if (request_.output == OutputMode::kText) return parsed;
    Result<std::string> json = CheckJsonOutput(
        parsed->text, request_.output == OutputMode::kSchema ? request_.schema_json : "");
    if (!json.ok()) return json.status();
    parsed->text = std::move(json).value();
    return parsed;
  }

  void Finish(Result<ChatResponse> result, int http_status, const Usage& used) {
    if (completed_.exchange(true, std::memory_order_acq_rel)) return;
    StopWaits();
    if (admitted_) slot_->gate->Release(estimate_, used.tokens());
    LlmCallRecord record = Record(result, http_status, used);
    if (!result.ok()) result = Outcome(result.status());
    record.outcome = result.status();
    LlmDone done = std::move(done_);
    done_ = nullptr;
    done(std::move(result), std::move(record));
  }

  LlmCallRecord Record(const Result<ChatResponse>& result, int http_status, const Usage& used) {
    LlmCallRecord record;
    record.provider = slot_->config.name;
    record.model = request_.model.empty() ? slot_->config.model : request_.model;
    record.request_model = record.model;
    record.provider_kind = slot_->config.kind;
    record.server = HostOf(slot_->config.base_url);
    if (result.ok() && !result->model.empty()) record.model = result->model;
    if (result.ok()) record.finish_reason = result->finish_reason;
    record.usage = used;
    record.cost = CostOf(slot_->config, used.prompt_tokens, used.completion_tokens);
    record.usage.cost = record.cost;
    record.seconds = clock_->Now() - start_;
    record.queued = queued_;
    record.http_status = http_status;
    record.rate_limit_warning = rate_limit_warning_;
    if (slot_->config.record_bytes > 0) {
      record.request_json = RecordedRequest(request_, slot_->config.record_bytes, key_, checked_);
      if (result.ok()) record.reply_json = RecordedReply(*result, slot_->config.record_bytes, key_);
    }
    return record;
  }

  // `failure` naming the provider, without the key.
  Status Outcome(const Status& failure) const {
    std::string prefix = "provider '" + slot_->config.name + "': ";
    std::string message = failure.message();
    if (message.compare(0, prefix.size(), prefix) != 0) message = prefix + message;
    return Status::Error(failure.kind(), Redact(std::move(message), key_), failure.retry_after());
  }

  Clock* const clock_;
  HttpLoop* const loop_;  // null when the client has none
  MockResponder* const mock_;
  const std::shared_ptr<const ProviderSlot> slot_;
  const ChatRequest request_;
  const std::string key_;
  const CancelToken* const cancel_;
  const double deadline_;
  LlmDone done_;  // moved out by the one Finish that wins
  const double start_;
  const bool checked_;  // the request passed CheckRequest
  const int64_t estimate_;
  // Written by Admitted before any completion path can start.
  double queued_ = 0;
  bool admitted_ = false;
  std::string rate_limit_warning_;
  std::atomic<bool> completed_{false};
  Mutex mu_;
  std::vector<TimerId> timers_ GUARDED_BY(mu_);
  uint64_t subscription_ GUARDED_BY(mu_) = 0;
  bool waits_stopped_ GUARDED_BY(mu_) = false;
};

Status CheckConfig(const ProviderConfig& config) {
  if (config.kind != "openai" && config.kind != "anthropic" && config.kind != "mock") {
    return Status::Error(ErrorKind::kPermanent, "provider '" + config.name + "': unknown kind '" +
                                                    config.kind +
                                                    "' (expected openai, anthropic or mock)");
  }
  if (config.kind != "mock" && config.base_url.empty()) {
    return Status::Error(
        ErrorKind::kPermanent,
        "provider '" + config.name + "': base_url is required for kind '" + config.kind + "'");
  }
  return Status::Ok();
}

// The key from the provider's api_key_env ("" when it names none), without
// surrounding whitespace. A key with a control character inside would
// inject header lines, so it is refused; the message never shows the key.
Result<std::string> ApiKey(const ProviderConfig& config) {
  if (config.api_key_env.empty()) return std::string();
  const char* value = std::getenv(config.api_key_env.c_str());
  std::string_view key = TrimBlanks(value == nullptr ? "" : value);
  std::string where = "provider '" + config.name + "': environment variable " + config.api_key_env;
  if (key.empty()) return Status::Error(ErrorKind::kPermanent, where + " is not set");
  for (char c : key) {
    unsigned char byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7F) {
      return Status::Error(ErrorKind::kPermanent,
                           where +
                               " holds a key with a control character (such as a line "
                               "break) inside it");
    }
  }
  return std::string(key);
}

}  // namespace

struct LlmClient::Entry : ProviderSlot {};

LlmClient::LlmClient(Clock* clock, std::shared_ptr<HttpLoop> loop,
                     std::shared_ptr<QuotaSource> quotas)
    : clock_(clock), loop_(std::move(loop)), quotas_(std::move(quotas)) {}

LlmClient::~LlmClient() = default;

Status LlmClient::AddProvider(ProviderConfig config) {
  if (Status s = CheckConfig(config); !s.ok()) return s;
  auto entry = std::make_shared<Entry>();
  entry->wire = ProviderFor(config.kind);
  entry->gate = std::make_shared<ProviderGate>(
      clock_, GateLimits{config.max_concurrency, config.rpm, config.tpm},
      SharedQuota{quotas_, "provider:" + config.name});
  entry->config = std::move(config);
  providers_[entry->config.name] = std::move(entry);
  return Status::Ok();
}

const ProviderConfig* LlmClient::Find(const std::string& name) const {
  auto it = providers_.find(name);
  return it == providers_.end() ? nullptr : &it->second->config;
}

void LlmClient::Call(const std::string& provider, ChatRequest request, const CancelToken* cancel,
                     double deadline, LlmDone done) {
  double start = clock_->Now();
  auto it = providers_.find(provider);
  if (it == providers_.end()) {
    LlmCallRecord record;
    record.provider = provider;
    record.outcome = Status::Error(ErrorKind::kPermanent, "unknown provider '" + provider + "'");
    Status outcome = record.outcome;
    done(std::move(outcome), std::move(record));
    return;
  }
  std::shared_ptr<const ProviderSlot> slot = it->second;
  Result<std::string> key =
      slot->wire != nullptr ? ApiKey(slot->config) : Result<std::string>(std::string());
  Status invalid = key.ok() ? CheckRequest(request) : key.status();
  auto call = std::make_shared<LlmCall>(clock_, loop_.get(), &mock_, std::move(slot),
                                        std::move(request), key.ok() ? *key : std::string(), cancel,
                                        deadline, std::move(done), start, invalid.ok());
  if (!invalid.ok()) return call->Fail(std::move(invalid));
  call->Start();
}

}  // namespace keel
