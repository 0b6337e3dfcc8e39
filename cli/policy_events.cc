#include "cli/policy_events.h"

#include <fmt/format.h>
#include <rapidjson/document.h>

#include <string_view>

namespace keel::cli {
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
};

// Counted kinds that DescribePolicyEvents leaves out: failures are told by
// the retries, timeouts and the node's error; a fallback's end by its status.
constexpr std::string_view kCountedOnly[] = {"attempt_failed", "fallback_finished"};

bool IsPolicyKind(std::string_view kind) {
  for (const Phrase& phrase : kPhrases) {
    if (phrase.kind == kind) return true;
  }
  for (std::string_view counted : kCountedOnly) {
    if (counted == kind) return true;
  }
  return false;
}

// Whether attempt_failed data `json` says the attempt timed out.
bool TimedOut(const std::string& json) {
  rapidjson::Document data;
  data.Parse(json.c_str());
  if (data.HasParseError() || !data.IsObject()) return false;
  auto kind = data.FindMember("kind");
  return kind != data.MemberEnd() && kind->value.IsString() &&
         std::string_view(kind->value.GetString()) == "timeout";
}

}  // namespace

std::map<std::string, PolicyCounts> CountPolicyEvents(const std::vector<EventRecord>& events) {
  std::map<std::string, PolicyCounts> by_node;
  for (const EventRecord& event : events) {
    if (event.node.empty() || !IsPolicyKind(event.kind)) continue;
    PolicyCounts& counts = by_node[event.node];
    ++counts[event.kind];
    if (event.kind == "attempt_failed" && TimedOut(event.data_json)) ++counts[kTimedOut];
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

}  // namespace keel::cli
