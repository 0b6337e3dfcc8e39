#pragma once
// Options of the DSL declarations: what `keel.fn "name" { ... }`,
// `keel.agent "name" { ... }` and `keel.provider "name" { ... }` accept, and
// how each option is checked and stored.
//
// Policy options (timeout, retry, circuit, fallback, ...) are only checked
// for shape and kept as JSON for the policy stack; agent options are kept as
// JSON for the agent node; the others (after, when, optional, run, and every
// provider option) are interpreted by the reader. Functions here follow the
// trampoline rules of lua_trampoline.h: they never raise. Thread-safety: as
// for the lua_State.

#include <span>
#include <string>
#include <string_view>
#include <vector>

struct lua_State;

namespace keel {

enum class OptionType {
  kNames,  // a node name or a list of them
  kFunction,
  kBoolean,
  kSeconds,       // a number of seconds in (0, 1e9]
  kSize,          // a positive number (MiB) or a size string such as "64MB"
  kTableOrCount,  // a table, or a count (as kCount) shorthand
  kCircuit,       // a table, true/false, or a breaker key
  kFallback,      // a workflow (or its name), or a list of them
  kJoin,          // "all", "any" or a table
  kString,
  kNonEmptyString,
  kCount,         // a whole number in [1, 2^31 - 1]
  kPositive,      // a finite number above 0
  kLatency,       // a number of seconds in [0, 1e9]
  kTemperature,   // a number in [0, 2]
  kMessages,      // a list of { role = ..., content = ... }
  kOutput,        // "text", "json" or a JSON schema table
  kHedge,         // { delay = seconds, max = n }
  kTools,         // NAME = { description, parameters, run }
  kProviderKind,  // "openai", "anthropic" or "mock"
  kEnvName,       // the name of an environment variable
  kPrices,        // { input = X, output = Y }
  kHeaders,       // header name = value
  kSecret,        // a literal key: always refused
  kFraction,      // a number in [0, 1]
  kNodeDecl,      // a node declaration (keel.fn { ... }, keel.agent { ... }, ...)
  kWorkflowRef,   // a workflow or its name
  kHealth,        // { interval = seconds }: keel serve probes the provider
  kRecord,        // true, false or a cap in bytes: what llm_call events record
};

// Who accepts an option: a bit set of these.
inline constexpr unsigned kFnOption = 1;
inline constexpr unsigned kAgentOption = 2;
inline constexpr unsigned kProviderOption = 4;
inline constexpr unsigned kWaitOption = 8;  // keel.wait
inline constexpr unsigned kNodeOption = kFnOption | kAgentOption | kWaitOption;
// keel.map, keel.call and keel.loop (scripts/dynamic_declarations.cc).
inline constexpr unsigned kMapOption = 64;
inline constexpr unsigned kCallOption = 128;
inline constexpr unsigned kLoopOption = 256;
inline constexpr unsigned kDynamicOption = kMapOption | kCallOption | kLoopOption;

// Which table of the declaration an option's stored value goes to.
enum class OptionStore { kDeclaration, kPolicy, kAgent };

struct DslOption {
  std::string_view name;
  OptionType type;
  unsigned owners;  // kFnOption, kAgentOption and/or kProviderOption
  OptionStore store;
};

// The option called `name` that `owner` (one of kFnOption, kAgentOption,
// kProviderOption) accepts, or null.
const DslOption* FindOption(unsigned owner, std::string_view name);
// Why `owner` does not accept `name`: "unknown option 'aftr' (did you mean
// 'after'?)", or that the option belongs to the other kind of node.
std::string UnknownOption(unsigned owner, std::string_view name);

// Empty when the value at `index` is valid for `option`; otherwise the
// problem, naming the option and what the value is: "option 'timeout' must
// be a number of seconds above 0 and at most 1e9, got inf". Never quotes a
// string value, which may be a secret.
std::string CheckOption(lua_State* L, int index, const DslOption& option);
// Pushes the value at `index`, already checked, in the form a declaration
// stores it: node and workflow lists as arrays, workflows as their names,
// hedge with its default max, tools as NAME = { description, parameters }.
void PushOption(lua_State* L, int index, const DslOption& option);
// Pushes a table NAME = run function of the tools table at `index`, already
// checked.
void PushToolFunctions(lua_State* L, int index);

// Empty when the value at `index` is a valid workflow `budget`; otherwise the
// problem, as for CheckOption.
std::string CheckBudget(lua_State* L, int index);

}  // namespace keel
