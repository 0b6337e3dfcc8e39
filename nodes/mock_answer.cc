// Writing MockResponder's replies (see mock_answer.h and mock_reply.h):
// answers and error bodies in both dialects, and the replies of faults.

#include "nodes/mock_answer.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdint>
#include <cstdlib>
#include <string>

namespace keel {
namespace {

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

// Replies carry a fixed creation time: reply content never depends on the clock.
constexpr int64_t kCreated = 1700000000;

// A terse front end to rapidjson's Writer for the reply shapes below. Keys
// are omitted inside arrays.
class JsonOut {
 public:
  JsonOut& Open(const char* key = nullptr) {
    if (key) w_.Key(key);
    w_.StartObject();
    return *this;
  }
  JsonOut& Close() {
    w_.EndObject();
    return *this;
  }
  JsonOut& List(const char* key) {
    w_.Key(key);
    w_.StartArray();
    return *this;
  }
  JsonOut& EndList() {
    w_.EndArray();
    return *this;
  }
  JsonOut& Str(const char* key, const std::string& value) {
    w_.Key(key);
    w_.String(value.c_str(), static_cast<rapidjson::SizeType>(value.size()));
    return *this;
  }
  JsonOut& Int(const char* key, int64_t value) {
    w_.Key(key);
    w_.Int64(value);
    return *this;
  }
  JsonOut& Null(const char* key) {
    w_.Key(key);
    w_.Null();
    return *this;
  }
  JsonOut& RawObject(const char* key, const std::string& json) {
    w_.Key(key);
    w_.RawValue(json.c_str(), json.size(), rapidjson::kObjectType);
    return *this;
  }
  std::string Text() const { return std::string(buf_.GetString(), buf_.GetSize()); }

 private:
  rapidjson::StringBuffer buf_;
  JsonWriter w_{buf_};
};

// How each status fault is described in both dialects.
struct ErrorKind {
  int status;
  const char* reason;
  const char* openai_type;
  const char* openai_code;
  const char* anthropic_type;
};

const ErrorKind& KindOf(int status) {
  static const ErrorKind kKinds[] = {
      {400, "bad request", "invalid_request_error", "invalid_request", "invalid_request_error"},
      {401, "invalid API key", "invalid_request_error", "invalid_api_key", "authentication_error"},
      {403, "permission denied", "permission_error", "permission_denied", "permission_error"},
      {404, "model not found", "invalid_request_error", "model_not_found", "not_found_error"},
      {429, "rate limit reached", "requests", "rate_limit_exceeded", "rate_limit_error"},
      {502, "bad gateway", "server_error", "bad_gateway", "api_error"},
      {503, "service unavailable", "server_error", "service_unavailable", "api_error"},
      {529, "overloaded", "server_error", "overloaded", "overloaded_error"},
  };
  static const ErrorKind kServerError{500, "internal server error", "server_error", "server_error",
                                      "api_error"};
  for (const ErrorKind& k : kKinds) {
    if (k.status == status) return k;
  }
  return kServerError;
}

std::string ErrorBody(MockDialect dialect, int status, const std::string& message) {
  const ErrorKind& kind = KindOf(status);
  JsonOut o;
  if (dialect == MockDialect::kOpenAI) {
    o.Open().Open("error").Str("message", message).Str("type", kind.openai_type);
    o.Null("param").Str("code", kind.openai_code).Close();
  } else {
    o.Open().Str("type", "error").Open("error").Str("type", kind.anthropic_type);
    o.Str("message", message).Close();
  }
  return o.Close().Text();
}

}  // namespace

namespace mock_detail {

MockReply BadRequestReply(MockDialect dialect, const std::string& message) {
  MockReply reply;
  reply.status = 400;
  reply.body = ErrorBody(dialect, 400, "mock: " + message);
  return reply;
}

std::string OpenAIAnswer(const Answer& a) {
  JsonOut o;
  o.Open().Str("id", "chatcmpl-mock-" + a.id).Str("object", "chat.completion");
  o.Int("created", kCreated).Str("model", a.model);
  o.List("choices").Open().Int("index", 0).Open("message").Str("role", "assistant");
  if (a.calls.empty() || !a.text.empty()) {
    o.Str("content", a.text);
  } else {
    o.Null("content");
  }
  if (!a.calls.empty()) {
    o.List("tool_calls");
    for (size_t i = 0; i < a.calls.size(); ++i) {
      o.Open().Str("id", "call_mock_" + a.id + "_" + std::to_string(i)).Str("type", "function");
      o.Open("function").Str("name", a.calls[i].name).Str("arguments", a.calls[i].arguments);
      o.Close().Close();
    }
    o.EndList();
  }
  o.Close().Null("logprobs").Str("finish_reason", a.calls.empty() ? "stop" : "tool_calls");
  o.Close().EndList();
  o.Open("usage").Int("prompt_tokens", a.prompt_tokens);
  o.Int("completion_tokens", a.completion_tokens);
  // Counts come from tokens=P,C and may be as large as INT64_MAX each.
  const int64_t total = a.prompt_tokens > INT64_MAX - a.completion_tokens
                            ? INT64_MAX
                            : a.prompt_tokens + a.completion_tokens;
  o.Int("total_tokens", total).Close();
  return o.Close().Text();
}

std::string AnthropicAnswer(const Answer& a) {
  JsonOut o;
  o.Open().Str("id", "msg_mock_" + a.id).Str("type", "message").Str("role", "assistant");
  o.Str("model", a.model).List("content");
  if (a.calls.empty() || !a.text.empty()) o.Open().Str("type", "text").Str("text", a.text).Close();
  for (size_t i = 0; i < a.calls.size(); ++i) {
    o.Open().Str("type", "tool_use").Str("id", "toolu_mock_" + a.id + "_" + std::to_string(i));
    o.Str("name", a.calls[i].name).RawObject("input", a.calls[i].arguments).Close();
  }
  o.EndList().Str("stop_reason", a.calls.empty() ? "end_turn" : "tool_use");
  o.Null("stop_sequence");
  o.Open("usage").Int("input_tokens", a.prompt_tokens);
  o.Int("output_tokens", a.completion_tokens).Close();
  return o.Close().Text();
}

}  // namespace mock_detail

bool IsMockFault(const std::string& fault) {
  static const char* const kFaults[] = {"500",       "502",       "503",  "529", "429",
                                        "400",       "401",       "403",  "404", "hang",
                                        "malformed", "truncated", "reset"};
  for (const char* f : kFaults) {
    if (fault == f) return true;
  }
  return false;
}

MockReply MockFaultReply(MockDialect dialect, const std::string& fault,
                         const std::string& answer_body, double retry_after) {
  MockReply reply;
  reply.fault = fault;
  if (fault == "hang" || fault == "reset") {
    reply.status = 0;
  } else if (fault == "malformed" || fault == "truncated") {
    reply.body = answer_body.substr(0, answer_body.size() / 2);
  } else {
    reply.fault.clear();
    reply.status = std::atoi(fault.c_str());
    if (reply.status == 429) reply.retry_after = retry_after;
    reply.body =
        ErrorBody(dialect, reply.status,
                  std::string("mock: ") + KindOf(reply.status).reason + " (fault " + fault + ")");
  }
  return reply;
}

}  // namespace keel
