#pragma once
// What the policy stack did to each node of a run, counted from its event
// log for `keel show`: retries, timeouts, breaker transitions and
// rejections, fallbacks, joins, bulkhead waits; and the work it paid for:
// LLM calls, hedged requests, tool calls.
// Free functions over values the caller owns; safe from any thread.

#include <map>
#include <string>
#include <vector>

#include "engine/store.h"

namespace keel {

// A node's policy events: kind -> count, sorted by kind. Besides the event
// kinds (retry_scheduled, attempt_failed, circuit_rejected, breaker_opened,
// ...), "attempt_timed_out" counts the attempt_failed events of kind timeout.
using PolicyCounts = std::map<std::string, int>;

// The policy events of every node in `events`, by node name. Nodes without
// any are absent; run-level events are not counted, nor are the events of
// nodes inside a fallback workflow, except their LLM calls, hedges and tool
// calls, which count for the node that ran the fallback.
std::map<std::string, PolicyCounts> CountPolicyEvents(const std::vector<EventRecord>& events);

// `counts` in words, most telling first, such as
// "2 retries, 1 timeout, breaker open, fallback"; "" when empty.
std::string DescribePolicyEvents(const PolicyCounts& counts);

}  // namespace keel
