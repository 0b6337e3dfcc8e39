#include "views/llm_usage.h"

#include <fmt/format.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <optional>

#include "engine/run_history.h"
#include "views/format.h"

namespace keel {
namespace {

// One LLM call as its event records it.
struct LlmCall {
  Usage usage;
  std::string fallback;       // the fallback workflow whose node made the call, or ""
  std::string fallback_node;  // that node
  std::string provider;
  std::string model;
  std::string outcome;  // "ok" or an error kind
  std::string message;  // why it failed
  double seconds = 0;
  double queued = 0;
  int64_t http_status = 0;
  int64_t hedge = 0;
};

std::string Text(const rapidjson::Value& object, const char* name) {
  auto it = object.FindMember(name);
  return it != object.MemberEnd() && it->value.IsString() ? it->value.GetString() : "";
}

double Number(const rapidjson::Value& object, const char* name) {
  auto it = object.FindMember(name);
  return it != object.MemberEnd() && it->value.IsNumber() ? it->value.GetDouble() : 0;
}

// The call `event` records, or nullopt when it records none.
std::optional<LlmCall> ReadLlmCall(const EventRecord& event) {
  std::optional<Usage> usage = UsageOf(event);
  if (!usage) return std::nullopt;
  LlmCall call;
  call.usage = *usage;
  // UsageOf has checked the shape: an object, with a "data" object when wrapped.
  rapidjson::Document doc;
  doc.Parse(event.data_json.c_str());
  const rapidjson::Value* data = &doc;
  if (event.kind != kUsageEventKind) {
    call.fallback = Text(doc, "fallback");
    call.fallback_node = Text(doc, "node");
    data = &doc.FindMember("data")->value;
  }
  call.provider = Text(*data, "provider");
  call.model = Text(*data, "model");
  call.outcome = Text(*data, "outcome");
  call.message = Text(*data, "message");
  call.seconds = Number(*data, "seconds");
  call.queued = Number(*data, "queued");
  call.http_status = static_cast<int64_t>(Number(*data, "http_status"));
  call.hedge = static_cast<int64_t>(Number(*data, "hedge"));
  return call;
}

void Add(LlmTotals* totals, const LlmCall& call) {
  totals->usage += call.usage;
  ++totals->calls;
  // An event's seconds run from the call to its end, the wait at the gate included.
  totals->seconds += std::max(0.0, call.seconds - call.queued);
  totals->queued += call.queued;
}

// The members WriteUsageJson writes for `usage`, inside an open object.
void WriteUsageMembers(JsonOut* out, const Usage& usage) {
  out->Key("prompt_tokens").Int(usage.prompt_tokens);
  out->Key("completion_tokens").Int(usage.completion_tokens);
  out->Key("cost").Double(usage.cost);
}

}  // namespace

RunLlmUsage SumLlmUsage(const std::vector<EventRecord>& events) {
  RunLlmUsage sums;
  for (const EventRecord& event : events) {
    std::optional<LlmCall> call = ReadLlmCall(event);
    if (!call) continue;
    Add(&sums.total, *call);
    if (!event.node.empty()) Add(&sums.by_node[event.node], *call);
  }
  return sums;
}

std::string DescribeTokens(const Usage& usage) {
  std::string text =
      fmt::format("{} (prompt {} + completion {})", FormatCount(usage.tokens()),
                  FormatCount(usage.prompt_tokens), FormatCount(usage.completion_tokens));
  if (usage.cost > 0) text += ", cost " + FormatCost(usage.cost);
  return text;
}

void WriteUsageJson(JsonOut* out, const Usage& usage) {
  out->BeginObject();
  WriteUsageMembers(out, usage);
  out->EndObject();
}

void WriteUsageJson(JsonOut* out, const LlmTotals& totals) {
  out->BeginObject();
  WriteUsageMembers(out, totals.usage);
  out->Key("calls").Int(totals.calls);
  out->Key("seconds").Seconds(totals.seconds);
  out->Key("queued_s").Seconds(totals.queued);
  out->EndObject();
}

std::string DescribeLlmCall(const EventRecord& event) {
  std::optional<LlmCall> call = ReadLlmCall(event);
  if (!call) return "";
  std::string text;
  if (!call->fallback.empty()) {
    text = fmt::format("fallback {} node {}: ", call->fallback, call->fallback_node);
  }
  text += call->provider.empty() ? "?" : call->provider;
  if (!call->model.empty()) text += " " + call->model;
  text += fmt::format(": {} + {} tokens", FormatCount(call->usage.prompt_tokens),
                      FormatCount(call->usage.completion_tokens));
  if (call->usage.cost > 0) text += ", cost " + FormatCost(call->usage.cost);
  text += ", " + FormatSeconds(std::max(0.0, call->seconds - call->queued));
  if (call->queued >= 0.001) text += " (after " + FormatSeconds(call->queued) + " queued)";
  if (call->hedge > 0) text += fmt::format(", hedge {}", call->hedge);
  if (call->outcome.empty() || call->outcome == "ok") return text + ", ok";
  text += ", " + call->outcome;
  if (call->http_status > 0) text += fmt::format(" (HTTP {})", call->http_status);
  if (!call->message.empty()) text += ": " + FirstLine(call->message);
  return text;
}

}  // namespace keel
