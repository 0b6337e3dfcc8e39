#pragma once
// One recorded event in words, one line, for progress logs: "breaker openai
// opened", "geo failed in 0.012s: transient: 503", "draft retries in 0.5s
// (attempt 2, after timeout)". Free functions; safe from any thread.

#include <string>
#include <string_view>

namespace keel {

// `node` ("" for a run-level event), `kind` and `data_json` as recorded. A
// kind without words of its own reads "NODE KIND" with spaces for
// underscores; data that does not parse reads as empty.
std::string DescribeEvent(std::string_view node, std::string_view kind, std::string_view data_json);

// Whether `kind` is a circuit breaker's transition ("breaker_opened", ...).
bool IsBreakerTransition(std::string_view kind);

}  // namespace keel
