#include "cli/llm_options.h"

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cmath>
#include <cstdlib>

namespace keel::cli {
namespace {

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '.';
}

bool StartsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

// Wraps a Check* function as a CLI11 validator described as `what`.
CLI::Validator Checked(std::string (*check)(std::string_view), const char* what) {
  return CLI::Validator([check](std::string& text) { return check(text); }, what);
}

}  // namespace

void AddLlmOptions(CLI::App* command, LlmArgs* args) {
  command
      ->add_option("--provider", args->providers,
                   "Send provider NAME's calls to base URL instead: NAME=URL (repeatable)")
      ->allow_extra_args(false)
      ->check(Checked(CheckProviderUrl, "NAME=URL"));
  command
      ->add_option("--max-tokens", args->max_tokens,
                   "Stop the run once its LLM calls have spent more tokens (default: the "
                   "workflow's budget)")
      ->check(Checked(CheckMaxTokens, "N"));
  command
      ->add_option("--max-cost", args->max_cost,
                   "Stop the run once its LLM calls have cost more (default: the workflow's "
                   "budget)")
      ->check(Checked(CheckMaxCost, "X"));
}

std::string CheckProviderUrl(std::string_view text) {
  const std::string quoted = "'" + std::string(text) + "'";
  size_t eq = text.find('=');
  if (eq == std::string_view::npos) {
    return "expected NAME=URL (for example openai=http://127.0.0.1:8080/v1), got " + quoted;
  }
  std::string_view name = text.substr(0, eq);
  std::string_view url = text.substr(eq + 1);
  if (name.empty()) return quoted + ": the provider name before '=' is empty";
  for (char c : name) {
    if (!IsNameChar(c)) {
      return quoted + ": a provider name holds only letters, digits, '_', '-' and '.'";
    }
  }
  for (std::string_view scheme : {"http://", "https://"}) {
    if (StartsWith(url, scheme) && url.size() > scheme.size()) return "";
  }
  return quoted + ": the URL must start with http:// or https:// and name a host";
}

std::string CheckMaxTokens(std::string_view text) {
  std::string copy(text);
  char* end = nullptr;
  errno = 0;
  long long value = std::strtoll(copy.c_str(), &end, 10);
  if (copy.empty() || *end != '\0' || errno == ERANGE || value < 1) {
    return "expected a whole number of tokens, 1 or more, got '" + copy + "'";
  }
  return "";
}

std::string CheckMaxCost(std::string_view text) {
  std::string copy(text);
  char* end = nullptr;
  double value = std::strtod(copy.c_str(), &end);
  if (copy.empty() || *end != '\0' || !std::isfinite(value) || value <= 0) {
    return "expected a cost above 0, such as 0.5, got '" + copy + "'";
  }
  return "";
}

std::map<std::string, std::string> ProviderUrls(const std::vector<std::string>& providers) {
  std::map<std::string, std::string> urls;
  for (const std::string& provider : providers) {
    size_t eq = provider.find('=');
    if (eq == std::string::npos) continue;
    urls[provider.substr(0, eq)] = provider.substr(eq + 1);
  }
  return urls;
}

Budget RunBudget(const LlmArgs& args, const Budget& declared) {
  Budget budget = declared;
  if (args.max_tokens > 0) budget.max_tokens = args.max_tokens;
  if (args.max_cost > 0) budget.max_cost = args.max_cost;
  return budget;
}

}  // namespace keel::cli
