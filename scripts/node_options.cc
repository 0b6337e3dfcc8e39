// The options of the DSL declarations (see node_options.h): which kind of
// declaration accepts which option, of what type, stored where; finding an
// option and explaining an unknown one. Checking a value is in
// node_option_checks.cc, its stored form in node_option_store.cc.

#include "scripts/node_options.h"

#include <string>
#include <string_view>
#include <vector>

#include "engine/did_you_mean.h"

namespace keel {
namespace {

using enum OptionType;
using enum OptionStore;

constexpr DslOption kOptions[] = {
    {"after", kNames, kNodeOption | kDynamicOption, kDeclaration},
    {"when", kFunction, kNodeOption | kDynamicOption, kDeclaration},
    {"optional", kBoolean, kNodeOption | kDynamicOption, kDeclaration},
    {"run", kFunction, kFnOption, kDeclaration},
    // keel.wait's own options, kept as JSON; its `timeout` is the signal's
    // (before the common one, which FindOption would find first).
    {"signal", kNonEmptyString, kWaitOption, kAgent},
    {"timeout", kSeconds, kWaitOption, kAgent},
    {"delay", kSeconds, kWaitOption, kAgent},
    {"until", kPositive, kWaitOption, kAgent},
    // A map's policies are its items' (unless the item sets its own).
    {"timeout", kSeconds, kNodeOption | kMapOption, kPolicy},
    {"total_timeout", kSeconds, kNodeOption | kMapOption, kPolicy},
    {"retry", kTableOrCount, kNodeOption | kMapOption, kPolicy},
    {"circuit", kCircuit, kNodeOption | kMapOption, kPolicy},
    {"fallback", kFallback, kNodeOption | kMapOption, kPolicy},
    {"join", kJoin, kNodeOption | kDynamicOption, kPolicy},
    {"memory", kSize, kNodeOption | kMapOption, kPolicy},
    {"max_concurrency", kTableOrCount, kNodeOption, kPolicy},
    {"over", kFunction, kMapOption, kDeclaration},
    {"max_concurrency", kCount, kMapOption, kDeclaration},
    {"tolerate", kFraction, kMapOption, kDeclaration},
    {"node", kNodeDecl, kMapOption, kDeclaration},
    {"workflow", kWorkflowRef, kDynamicOption, kDeclaration},
    {"params", kFunction, kCallOption, kDeclaration},
    {"max_iterations", kCount, kLoopOption, kDeclaration},
    {"done_when", kFunction, kLoopOption, kDeclaration},
    {"provider", kNonEmptyString, kAgentOption, kAgent},
    {"prompt", kString, kAgentOption, kAgent},
    {"system", kString, kAgentOption, kAgent},
    {"messages", kMessages, kAgentOption, kAgent},
    {"model", kString, kAgentOption | kProviderOption, kAgent},
    {"temperature", kTemperature, kAgentOption, kAgent},
    {"max_tokens", kCount, kAgentOption, kAgent},
    {"max_turns", kCount, kAgentOption, kAgent},
    {"output", kOutput, kAgentOption, kAgent},
    {"hedge", kHedge, kAgentOption, kAgent},
    {"tools", kTools, kAgentOption, kAgent},
    {"kind", kProviderKind, kProviderOption, kDeclaration},
    {"base_url", kString, kProviderOption, kDeclaration},
    {"api_key_env", kEnvName, kProviderOption, kDeclaration},
    {"max_concurrency", kCount, kProviderOption, kDeclaration},
    {"rpm", kPositive, kProviderOption, kDeclaration},
    {"tpm", kPositive, kProviderOption, kDeclaration},
    {"prices", kPrices, kProviderOption, kDeclaration},
    {"headers", kHeaders, kProviderOption, kDeclaration},
    {"latency", kLatency, kProviderOption, kDeclaration},
    {"ca_file", kNonEmptyString, kProviderOption, kDeclaration},
    {"http2", kBoolean, kProviderOption, kDeclaration},
    {"health", kHealth, kProviderOption, kDeclaration},
    {"record", kRecord, kProviderOption, kDeclaration},
    {"api_key", kSecret, kProviderOption, kDeclaration},
    {"apikey", kSecret, kProviderOption, kDeclaration},
    {"key", kSecret, kProviderOption, kDeclaration},
    {"token", kSecret, kProviderOption, kDeclaration},
    {"api_token", kSecret, kProviderOption, kDeclaration},
    {"secret", kSecret, kProviderOption, kDeclaration},
};

std::vector<std::string_view> OptionNames(unsigned owner) {
  std::vector<std::string_view> names;
  for (const DslOption& option : kOptions) {
    if ((option.owners & owner) != 0 && option.type != kSecret) names.push_back(option.name);
  }
  return names;
}

}  // namespace

const DslOption* FindOption(unsigned owner, std::string_view name) {
  for (const DslOption& option : kOptions) {
    if ((option.owners & owner) != 0 && option.name == name) return &option;
  }
  return nullptr;
}

std::string UnknownOption(unsigned owner, std::string_view name) {
  std::string option = "option '" + std::string(name) + "'";
  if (owner == kAgentOption && FindOption(kFnOption, name) != nullptr) {
    return option + " is for keel.fn nodes; an agent's work is its prompt";
  }
  if (owner == kFnOption && FindOption(kAgentOption, name) != nullptr) {
    return option + " is for keel.agent nodes (keel.agent \"name\" { ... })";
  }
  if (owner == kWaitOption && FindOption(kFnOption | kAgentOption, name) != nullptr) {
    return option + " is for keel.fn and keel.agent nodes; a wait waits for a signal or a timer";
  }
  return "unknown " + option + DidYouMean(name, OptionNames(owner));
}

}  // namespace keel
