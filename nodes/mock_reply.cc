// MockResponder (see mock_reply.h): reads a request (mock_request.cc),
// applies its directives, decides the reply text or tool calls, writes the
// answer (mock_answer.cc) and applies a fault the directives ask for.

#include "nodes/mock_reply.h"

#include <rapidjson/document.h>

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "nodes/json_document.h"
#include "nodes/mock_answer.h"
#include "nodes/mock_directives.h"
#include "nodes/mock_request.h"
#include "nodes/mock_schema_value.h"
#include "nodes/untrusted_json.h"
#include "nodes/wire_json.h"

namespace keel {
namespace {

using mock_detail::Answer;
using mock_detail::AnthropicAnswer;
using mock_detail::BadRequestReply;
using mock_detail::Call;
using mock_detail::Conversation;
using mock_detail::OpenAIAnswer;
using mock_detail::Output;
using mock_detail::ReadConversation;
using mock_detail::Tool;
using rapidjson::Value;

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
    *text = wire::Serialize(object);
  } else {
    *text = have_results ? said : "echo: " + said;
  }
}

}  // namespace

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
