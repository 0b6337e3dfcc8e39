#pragma once
// NodeOptions: the options `keel.fn "name" { ... }` accepts, and how each is
// checked and stored.
//
// Policy options (timeout, retry, circuit, fallback, ...) are only checked
// for shape and kept as JSON for the policy stack; the others (after, when,
// optional, run) are interpreted by the loader. Functions here follow the
// trampoline rules of lua_trampoline.h: they never raise. Thread-safety: as
// for the lua_State.

#include <span>
#include <string>
#include <string_view>

struct lua_State;

namespace keel {

enum class NodeOptionType {
  kNames,  // a node name or a list of them
  kFunction,
  kBoolean,
  kSeconds,       // a positive number of seconds
  kSize,          // a positive number (MiB) or a size string such as "64MB"
  kTableOrCount,  // a table, or a positive integer shorthand
  kCircuit,       // a table, true/false, or a breaker key
  kFallback,  // a workflow (or its name), or a list of them
  kJoin,      // "all", "any" or a table
};

struct NodeOption {
  std::string_view name;
  NodeOptionType type;
  bool policy;  // kept as JSON for the policy stack rather than interpreted here
};

// The option called `name`, or null.
const NodeOption* FindNodeOption(std::string_view name);
// Every option name, for did-you-mean suggestions.
std::span<const std::string_view> NodeOptionNames();

// Empty when the value at `index` is valid for `option`; otherwise what it
// must be, e.g. "must be a positive number of seconds".
std::string CheckNodeOption(lua_State* L, int index, const NodeOption& option);
// Pushes the value at `index`, already checked, in the form a declaration
// stores it: node and workflow lists as arrays, workflows as their names.
void PushNodeOption(lua_State* L, int index, const NodeOption& option);

}  // namespace keel
