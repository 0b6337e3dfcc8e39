#include "views/policy_events.h"

#include <fmt/format.h>
#include <rapidjson/document.h>

#include <string_view>

namespace keel {
namespace {

constexpr char kTimedOut[] = "attempt_timed_out";

// How each counted kind reads, in the order DescribePolicyEvents lists them.
// A phrase with a plural reads "N <plural>" ("2 retries"); one without
// reads as it is, with "×N" when it happened more than once.
struct Phrase {
  std::string_view kind;
  std::string_view singular;
  std::string_view plural;  // empty: no count in front
};

constexpr Phrase kPhrases[] = {
    {"retry_scheduled", "retry", "retries"},
    {kTimedOut, "timeout", "timeouts"},
    {"total_timeout", "total timeout", ""},
    {"retry_budget_exhausted", "retry budget exhausted", ""},
    {"breaker_opened", "breaker opened", ""},
    {"breaker_reopened", "breaker reopened", ""},
    {"breaker_half_open", "breaker half-open", ""},
    {"breaker_closed", "breaker closed", ""},
    {"circuit_rejected", "breaker open", ""},  // a call refused by an open breaker
    {"fallback_started", "fallback", ""},
    {"join_satisfied", "join satisfied", ""},
    {"bulkhead_queued", "queued", ""},
    {"llm_call", "llm call", "llm calls"},
    {"hedge_started", "hedge", "hedges"},
    {"tool_call", "tool call", "tool calls"},
};

// The work a node pays for: counted whether the node did it or a node of
// the fallback workflow it ran (a "fallback_event" wrapping it).
constexpr std::string_view kWorkKinds[] = {"llm_call", "hedge_started", "hedge_aborted",
                                           "tool_call"};

// Counted kinds that DescribePolicyEvents leaves out: failures are told by
// the retries, timeouts and the node's error; a fallback's end by its status.
// A hedge's abort is told by its start.
constexpr std::string_view kCountedOnly[] = {"attempt_failed", "fallback_finished",
                                             "hedge_aborted"};

bool IsPolicyKind(std::string_view kind) {
  for (const Phrase& phrase : kPhrases) {
    if (phrase.kind == kind) return true;
  }
  for (std::string_view counted : kCountedOnly) {
    if (counted == kind) return true;
  }
  return false;
}

// The string member `name` of JSON object `json`, or "".
std::string StringMember(const std::string& json, const char* name) {
  rapidjson::Document data;
  data.Parse(json.c_str());
  if (data.HasParseError() || !data.IsObject()) return "";
  auto it = data.FindMember(name);
  return it != data.MemberEnd() && it->value.IsString() ? it->value.GetString() : "";
}

// The kind `event` is counted under: its own, or for a fallback_event the
// wrapped kind when that is work the node pays for; "" when not counted.
std::string CountedKind(const EventRecord& event) {
  if (IsPolicyKind(event.kind)) return event.kind;
  if (event.kind != "fallback_event") return "";
  std::string inner = StringMember(event.data_json, "event");
  for (std::string_view work : kWorkKinds) {
    if (work == inner) return inner;
  }
  return "";
}

}  // namespace

std::map<std::string, PolicyCounts> CountPolicyEvents(const std::vector<EventRecord>& events) {
  std::map<std::string, PolicyCounts> by_node;
  for (const EventRecord& event : events) {
    if (event.node.empty()) continue;
    std::string kind = CountedKind(event);
    if (kind.empty()) continue;
    PolicyCounts& counts = by_node[event.node];
    ++counts[kind];
    if (kind == "attempt_failed" && StringMember(event.data_json, "kind") == "timeout") {
      ++counts[kTimedOut];
    }
  }
  return by_node;
}

std::string DescribePolicyEvents(const PolicyCounts& counts) {
  std::string text;
  for (const Phrase& phrase : kPhrases) {
    auto it = counts.find(std::string(phrase.kind));
    if (it == counts.end() || it->second == 0) continue;
    const int n = it->second;
    if (!text.empty()) text += ", ";
    if (!phrase.plural.empty()) {
      text += fmt::format("{} {}", n, n == 1 ? phrase.singular : phrase.plural);
    } else {
      text += phrase.singular;
      if (n > 1) text += fmt::format(" ×{}", n);
    }
  }
  return text;
}

}  // namespace keel
