#pragma once
// FuzzProviderReply: the body of the provider reply targets. The input is a
// reply as text: a first line with the HTTP status, header lines, a blank
// line, then the body — what a server (or anything between it and keel)
// may send. Properties: Parse never crashes; a failure's message is valid
// UTF-8 and names no unbounded wait; an answer's token counts are in range,
// its assistant message is valid JSON, and the next request built from a
// conversation holding it (and a result for each tool call) is valid JSON
// in both wire formats. Any thread.

#include <cstdlib>
#include <string>
#include <string_view>

#include "engine/utf8.h"
#include "fuzz/fuzz_check.h"
#include "nodes/json_document.h"
#include "nodes/provider.h"
#include "nodes/untrusted_json.h"
#include "nodes/wire_json.h"

namespace keel::fuzz {

// The response `input` describes (see above).
inline HttpResponse ResponseOf(std::string_view input) {
  HttpResponse response;
  size_t eol = input.find('\n');
  std::string first(input.substr(0, eol));
  response.status = std::atoi(first.c_str()) % 1000;
  input = eol == std::string_view::npos ? std::string_view() : input.substr(eol + 1);
  auto [head, body] = SplitHead(input);
  while (!head.empty()) {
    size_t end = head.find('\n');
    response.AddHeaderLine(head.substr(0, end));
    head = end == std::string_view::npos ? std::string_view() : head.substr(end + 1);
  }
  response.body = std::string(body);
  return response;
}

// The conversation after `reply`: a question, the reply, a result per tool call.
inline std::string NextMessages(const ChatResponse& reply) {
  rapidjson::StringBuffer buf;
  wire::Writer w(buf);
  w.StartArray();
  w.StartObject();
  w.Key("role");
  w.String("user");
  w.Key("content");
  w.String("q");
  w.EndObject();
  w.RawValue(reply.message_json.data(), reply.message_json.size(), rapidjson::kObjectType);
  for (const ToolCall& call : reply.tool_calls) {
    w.StartObject();
    w.Key("role");
    w.String("tool");
    w.Key("tool_call_id");
    wire::String(w, call.id);
    w.Key("content");
    w.String("r");
    w.EndObject();
  }
  w.EndArray();
  return std::string(buf.GetString(), buf.GetSize());
}

inline void FuzzProviderReply(const char* kind, const uint8_t* data, size_t size) {
  const Provider* provider = ProviderFor(kind);
  FUZZ_CHECK(provider != nullptr, kind);
  HttpResponse response = ResponseOf(std::string_view(reinterpret_cast<const char*>(data), size));
  constexpr double kWallNow = 1.7e9;
  Result<ChatResponse> parsed = provider->Parse(response, kWallNow);
  if (!parsed.ok()) {
    const Status& s = parsed.status();
    FUZZ_CHECK(IsUtf8(s.message()), s.message());
    FUZZ_CHECK(s.retry_after() <= kMaxRetryAfter, std::to_string(s.retry_after()));
    return;
  }
  const ChatResponse& reply = *parsed;
  FUZZ_CHECK(reply.usage.prompt_tokens >= 0 && reply.usage.prompt_tokens <= kMaxTokenCount, "");
  FUZZ_CHECK(reply.usage.completion_tokens >= 0 && reply.usage.completion_tokens <= kMaxTokenCount,
             "");
  JsonDocument message;
  Status valid = ParseUntrustedJson(reply.message_json, &message);
  FUZZ_CHECK(valid.ok() && message.IsObject(), valid.message() + " in " + reply.message_json);

  ChatRequest next;
  next.messages_json = NextMessages(reply);
  for (const char* other : {"openai", "anthropic"}) {
    ProviderConfig config;
    config.name = other;
    config.kind = other;
    config.base_url = "http://127.0.0.1:1";
    config.model = "m";
    HttpRequest request = ProviderFor(other)->Build(config, next, "key");
    JsonDocument body;
    Status built = ParseUntrustedJson(request.body, &body);
    FUZZ_CHECK(built.ok(), std::string(other) + ": " + built.message() + " in " + request.body);
  }
}

}  // namespace keel::fuzz
