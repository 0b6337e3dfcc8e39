#pragma once
// The LLM options of `keel run` and `keel resume`: `--provider NAME=URL`
// points a provider at another base URL; `--max-tokens N` and `--max-cost X`
// cap what the run's LLM calls may spend. Free functions; call from one
// thread.

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "engine/usage.h"

namespace CLI {
class App;
}  // namespace CLI

namespace keel::cli {

struct LlmArgs {
  std::vector<std::string> providers;  // "NAME=URL", in command-line order
  int64_t max_tokens = 0;              // 0: the workflow's own limit
  double max_cost = 0;                 // 0: the workflow's own limit
};

// Adds --provider, --max-tokens and --max-cost to `command`, parsed into
// `args` (which must outlive the parse). A malformed value fails the parse
// with a message naming the option and the value.
void AddLlmOptions(CLI::App* command, LlmArgs* args);

// Why `text` is not a valid `--provider` value (NAME=URL: NAME of letters,
// digits, '_', '-' and '.'; URL starting with http:// or https://), or ""
// when it is.
std::string CheckProviderUrl(std::string_view text);

// Why `text` is not a valid `--max-tokens` (a whole number, 1 or more) or
// `--max-cost` (a finite number above 0) value, or "" when it is.
std::string CheckMaxTokens(std::string_view text);
std::string CheckMaxCost(std::string_view text);

// The base URLs by provider name from checked `providers`; a later
// NAME=URL replaces an earlier one for the same NAME.
std::map<std::string, std::string> ProviderUrls(const std::vector<std::string>& providers);

// `declared` (the workflow's own budget) with each limit given in `args`
// replacing the declared one.
Budget RunBudget(const LlmArgs& args, const Budget& declared);

}  // namespace keel::cli
