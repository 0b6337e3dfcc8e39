#pragma once
// What a run's LLM calls spent, read from its event log: the events of kind
// kUsageEventKind, and those of a fallback workflow's nodes wrapped in
// "fallback_event". Totals per node and for the run (for `keel show` and the
// report of `keel run`), one call in words (for `keel show --events`) and
// usage as text and JSON. Free functions over values the caller owns; safe
// from any thread.

#include <map>
#include <string>
#include <vector>

#include "engine/store.h"
#include "engine/usage.h"
#include "views/json_out.h"

namespace keel {

struct LlmTotals {
  Usage usage;
  int calls = 0;       // failed calls and hedged requests included
  double seconds = 0;  // the calls' own time, summed, queueing excluded
  double queued = 0;   // time the calls waited for their provider's rpm/max_concurrency
};

struct RunLlmUsage {
  // By the node that made the calls, or ran the fallback workflow that did;
  // nodes without calls are absent.
  std::map<std::string, LlmTotals> by_node;
  LlmTotals total;  // every call of the run
};

// Sums the LLM calls among `events` (any other events are ignored).
RunLlmUsage SumLlmUsage(const std::vector<EventRecord>& events);

// "1,234 (prompt 1,000 + completion 234)", then ", cost 0.0123" when the
// cost is above 0.
std::string DescribeTokens(const Usage& usage);

// Writes `usage` as an object of prompt_tokens, completion_tokens and cost;
// `totals` adds calls and seconds.
void WriteUsageJson(JsonOut* out, const Usage& usage);
void WriteUsageJson(JsonOut* out, const LlmTotals& totals);

// An LLM call event in words, such as
// "openai gpt-4o: 1,000 + 234 tokens, cost 0.0012, 1.2s, ok"; "" for any
// other event.
std::string DescribeLlmCall(const EventRecord& event);

}  // namespace keel
