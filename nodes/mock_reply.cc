#include "nodes/mock_reply.h"

#include <rapidjson/document.h>
#include <rapidjson/pointer.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "nodes/json_document.h"
#include "nodes/mock_directives.h"
#include "nodes/mock_schema_value.h"
#include "nodes/untrusted_json.h"
#include "nodes/wire_json.h"

namespace keel {
namespace {

using rapidjson::Document;
using rapidjson::Value;
using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

// Replies carry a fixed creation time: reply content never depends on the clock.
constexpr int64_t kCreated = 1700000000;

// A malformed request: becomes a 400 with this message.
struct BadRequest {
  std::string message;
};

struct Tool {
  std::string name;
  const Value* schema = nullptr;  // in the request document; null when absent
};

enum class Output { kText, kJson, kSchema };

// What Respond needs from a request, in either dialect. Pointers point into
// the request document.
struct Conversation {
  std::string model;
  std::string system;
  std::string user;                       // last user message as sent
  std::string transcript;                 // every message's role and text
  std::vector<std::string> tool_results;  // from the last user message on
  std::vector<Tool> tools;
  bool tools_disabled = false;
  std::string forced_tool;
  Output output = Output::kText;
  const Value* schema = nullptr;
  // Anthropic requests carry their schema inside the system prompt's text:
  // parsed from there, it lives here.
  std::shared_ptr<Document> system_schema;
};

// One tool call of a reply.
struct Call {
  std::string name;
  std::string arguments;  // a JSON object as text
};

uint64_t Fnv1a(const std::string& text) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

std::string Hex(uint64_t value) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(value));
  return buf;
}

int64_t CountTokens(const std::string& text) {
  int64_t chars = 0;
  for (unsigned char c : text) chars += (c & 0xC0) != 0x80;
  return (chars + 3) / 4;
}

std::string Str(const Value& v, const char* key) { return wire::StringOr(wire::Member(v, key)); }

const Value* Member(const Value& v, const char* key) { return wire::Member(v, key); }

std::string ToJson(const Value& v) { return wire::Serialize(v); }

// The text of a message content: a string, or the text parts (OpenAI) or
// text blocks (Anthropic) of an array, one per line.
std::string ContentText(const Value* content) {
  if (content == nullptr) return "";
  if (content->IsString()) return std::string(content->GetString(), content->GetStringLength());
  std::string text;
  if (!content->IsArray()) return text;
  for (const Value& part : content->GetArray()) {
    if (Str(part, "type") != "text") continue;
    if (!text.empty()) text += "\n";
    text += Str(part, "text");
  }
  return text;
}

bool HasText(const Value* content) {
  if (content == nullptr) return false;
  if (content->IsString()) return true;
  if (!content->IsArray()) return false;
  for (const Value& part : content->GetArray()) {
    if (Str(part, "type") == "text") return true;
  }
  return false;
}

// ---- reading a request ----

void ReadTools(const Value& req, MockDialect dialect, Conversation* c) {
  const Value* tools = Member(req, "tools");
  if (tools != nullptr && tools->IsArray()) {
    for (const Value& t : tools->GetArray()) {
      const Value* fn = dialect == MockDialect::kOpenAI ? Member(t, "function") : &t;
      if (fn == nullptr || Str(*fn, "name").empty()) continue;
      c->tools.push_back(
          {Str(*fn, "name"),
           Member(*fn, dialect == MockDialect::kOpenAI ? "parameters" : "input_schema")});
    }
  }
  const Value* choice = Member(req, "tool_choice");
  if (choice == nullptr) return;
  if (choice->IsString()) {
    c->tools_disabled = std::string(choice->GetString()) == "none";
  } else if (dialect == MockDialect::kOpenAI) {
    if (const Value* fn = Member(*choice, "function")) c->forced_tool = Str(*fn, "name");
  } else {
    c->tools_disabled = Str(*choice, "type") == "none";
    if (Str(*choice, "type") == "tool") c->forced_tool = Str(*choice, "name");
  }
}

void ReadOutput(const Value& req, MockDialect dialect, Conversation* c) {
  if (dialect == MockDialect::kAnthropic) {
    if (c->system.find("JSON") != std::string::npos) c->output = Output::kJson;
    // keel's Anthropic provider writes "... match this JSON schema: {...}".
    const std::string marker = "JSON schema: ";
    size_t at = c->system.find(marker);
    if (at == std::string::npos) return;
    auto schema = std::make_shared<JsonDocument>();
    schema->Parse<rapidjson::kParseStopWhenDoneFlag>(c->system.c_str() + at + marker.size());
    if (!schema->HasParseError() && schema->IsObject()) {
      c->system_schema = schema;
      c->schema = schema.get();
      c->output = Output::kSchema;
    }
    return;
  }
  const Value* format = Member(req, "response_format");
  if (format == nullptr) return;
  std::string type = Str(*format, "type");
  if (type == "json_object") c->output = Output::kJson;
  if (type != "json_schema") return;
  c->output = Output::kJson;
  const Value* spec = Member(*format, "json_schema");
  const Value* schema = spec ? Member(*spec, "schema") : nullptr;
  if (schema != nullptr && schema->IsObject()) {
    c->output = Output::kSchema;
    c->schema = schema;
  }
}

// Fills `c` from `req` (a JSON object); a BadRequest when it cannot be answered.
std::optional<BadRequest> ReadConversation(const Value& req, MockDialect dialect, Conversation* c) {
  c->model = Str(req, "model");
  const Value* messages = Member(req, "messages");
  if (messages == nullptr || !messages->IsArray()) {
    return BadRequest{"'messages' is missing or not an array"};
  }
  if (messages->Empty()) return BadRequest{"'messages' is empty"};
  if (dialect == MockDialect::kAnthropic) c->system = ContentText(Member(req, "system"));

  size_t last_user = 0;
  for (size_t i = 0; i < messages->Size(); ++i) {
    const Value& m = (*messages)[i];
    if (!m.IsObject()) return BadRequest{"messages[" + std::to_string(i) + "] is not an object"};
    const std::string role = Str(m, "role");
    const Value* content = Member(m, "content");
    if (dialect == MockDialect::kOpenAI && (role == "system" || role == "developer")) {
      if (!c->system.empty()) c->system += "\n";
      c->system += ContentText(content);
    }
    if (role == "user" && HasText(content)) {
      last_user = i;
      c->user = ContentText(content);
    }
  }

  c->transcript = c->system;
  for (size_t i = 0; i < messages->Size(); ++i) {
    const Value& m = (*messages)[i];
    const std::string role = Str(m, "role");
    const Value* content = Member(m, "content");
    c->transcript += "\n" + role + ": " + ContentText(content);
    if (const Value* calls = Member(m, "tool_calls"); calls && calls->IsArray()) {
      c->transcript += ToJson(*calls);
    }
    std::vector<std::string> results;
    if (dialect == MockDialect::kOpenAI && role == "tool") results.push_back(ContentText(content));
    if (content != nullptr && content->IsArray()) {
      for (const Value& block : content->GetArray()) {
        const std::string type = Str(block, "type");
        if (type == "tool_result") results.push_back(ContentText(Member(block, "content")));
        if (type == "tool_use") c->transcript += ToJson(block);
      }
    }
    for (const std::string& r : results) {
      if (role != "tool") c->transcript += " " + r;
      if (i >= last_user) c->tool_results.push_back(r);
    }
  }
  ReadTools(req, dialect, c);
  ReadOutput(req, dialect, c);
  return std::nullopt;
}

// ---- writing replies ----

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

MockReply BadRequestReply(MockDialect dialect, const std::string& message) {
  MockReply reply;
  reply.status = 400;
  reply.body = ErrorBody(dialect, 400, "mock: " + message);
  return reply;
}

// What a successful answer says, in either dialect.
struct Answer {
  std::string id;  // derived from the request
  std::string model;
  std::string text;         // omitted (null) when empty and there are calls
  std::vector<Call> calls;  // tool calls
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
};

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

// The reply text, or the tool calls, a conversation gets (see the header).
void Decide(const Conversation& c, const MockDirectives& d, const std::string& user_text,
            std::string* text, std::vector<Call>* calls) {
  const bool have_results = !c.tool_results.empty();
  if (!have_results && !d.calls.empty()) {
    for (const auto& [name, args] : d.calls) calls->push_back({name, args});
    return;
  }
  if (!have_results && !c.tools.empty() && !c.tools_disabled) {
    const Tool* tool = &c.tools.front();
    for (const Tool& t : c.tools) {
      if (t.name == c.forced_tool) tool = &t;
    }
    std::string args = tool->schema ? SmallestJson(*tool->schema) : "{}";
    if (args.empty() || args[0] != '{') args = "{}";
    calls->push_back({tool->name, args});
    return;
  }
  if (d.reply) {
    *text = *d.reply;
    return;
  }
  std::string said = user_text;
  if (have_results) {
    said = "tool results: ";
    for (size_t i = 0; i < c.tool_results.size(); ++i) {
      said += (i ? " | " : "") + c.tool_results[i];
    }
  }
  if (c.output == Output::kSchema) {
    *text = SmallestJson(*c.schema);
  } else if (c.output == Output::kJson) {
    Value said_value(said.c_str(), static_cast<rapidjson::SizeType>(said.size()));
    Value object(rapidjson::kObjectType);
    JsonDocument scratch;
    object.AddMember("echo", said_value, scratch.GetAllocator());
    *text = ToJson(object);
  } else {
    *text = have_results ? said : "echo: " + said;
  }
}

}  // namespace

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

MockReply MockResponder::Respond(const std::string& request_body, MockDialect dialect) {
  // Without recursion and with a depth cap: a server's request body may be
  // anything, such as a million '['.
  JsonDocument req;
  if (Status parsed = ParseUntrustedJson(request_body, &req); !parsed.ok()) {
    return BadRequestReply(dialect, "request body is not JSON: " + parsed.message());
  }
  if (!req.IsObject()) return BadRequestReply(dialect, "request body is not a JSON object");
  Conversation c;
  if (auto bad = ReadConversation(req, dialect, &c)) return BadRequestReply(dialect, bad->message);

  MockDirectives d;
  std::optional<std::string> bad;
  TakeMockDirectives(c.system, &d, &bad);
  std::string user_text = bad ? "" : TakeMockDirectives(c.user, &d, &bad);
  if (bad) return BadRequestReply(dialect, *bad);

  Answer answer;
  Decide(c, d, user_text, &answer.text, &answer.calls);
  std::string completion = answer.text;
  for (const Call& call : answer.calls) completion += call.name + call.arguments;
  answer.id = Hex(Fnv1a(request_body));
  answer.model = c.model.empty() ? "mock" : c.model;
  answer.prompt_tokens = d.tokens ? d.tokens->first : CountTokens(c.transcript);
  answer.completion_tokens = d.tokens ? d.tokens->second : CountTokens(completion);

  MockReply reply;
  reply.body = dialect == MockDialect::kOpenAI ? OpenAIAnswer(answer) : AnthropicAnswer(answer);
  bool faulted = !d.fault.empty();
  if (faulted && d.times >= 0) {
    const std::string key = Hex(Fnv1a(d.written + "\n" + c.transcript));
    MutexLock lock(&mu_);
    faulted = ++seen_[key] <= d.times;
  }
  if (faulted) reply = MockFaultReply(dialect, d.fault, reply.body, d.retry_after);
  reply.latency = d.latency_ms / 1000.0;
  reply.model = c.model;
  reply.user = c.user;
  return reply;
}

}  // namespace keel
