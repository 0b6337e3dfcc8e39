#pragma once
// Usage and Budget: what LLM calls spent (tokens, money) and the most a run
// may spend. Plain values.
//
// A body reports each call with NodeContext::spend; the engine stores it as
// an event of kind kUsageEventKind whose data object carries the usage in
// the fields "prompt_tokens", "completion_tokens" and "cost" (besides what
// the body adds), sums it per run and stops the run when a Budget is
// exceeded.

#include <cstdint>

namespace keel {

inline constexpr const char* kUsageEventKind = "llm_call";

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  double cost = 0;  // in the currency of the providers' prices; 0 when unpriced

  int64_t tokens() const { return prompt_tokens + completion_tokens; }
  Usage& operator+=(const Usage& other) {
    prompt_tokens += other.prompt_tokens;
    completion_tokens += other.completion_tokens;
    cost += other.cost;
    return *this;
  }
};

struct Budget {
  int64_t max_tokens = 0;  // prompt + completion across the run; 0: unlimited
  double max_cost = 0;     // 0: unlimited

  bool limited() const { return max_tokens > 0 || max_cost > 0; }
  // Why `spent` is over the budget, or "" when it is not.
  const char* Exceeded(const Usage& spent) const {
    if (max_tokens > 0 && spent.tokens() > max_tokens) return "token budget";
    if (max_cost > 0 && spent.cost > max_cost) return "cost budget";
    return "";
  }
};

}  // namespace keel
