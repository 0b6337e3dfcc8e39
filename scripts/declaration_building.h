#pragma once
// What the declaration functions share while they build a declaration:
// declarations.cc (the common steps, keel.fn and friends installed),
// node_declarations.cc (keel.fn, keel.agent, keel.map, keel.call, keel.loop,
// keel.wait), provider_declarations.cc (keel.provider) and
// workflow_declarations.cc (keel.workflow). Not for other callers. Called on
// the Lua state's thread only, like any Lua C API code.

#include <string>
#include <string_view>

#include "lua.hpp"

namespace keel::declaration {

// Pushes `message` and returns kLuaRaise, for LuaTrampoline to raise.
int Raise(lua_State* L, const std::string& message);

// True for a name of letters, digits, '_', '.' and '-' that starts with a
// letter or '_'.
bool IsValidName(std::string_view name);

// table[field] = value, for the table at stack index `table`.
void SetString(lua_State* L, int table, const char* field, std::string_view value);

// Stack slots of a declaration being built: the options the script gave,
// then the tables they are stored in (see OptionStore).
inline constexpr int kGiven = 1;
inline constexpr int kDecl = 2;
inline constexpr int kPolicy = 3;
inline constexpr int kAgent = 4;

// What a declaration being built is called, where, and the start of its
// messages ("file.lua:3: node 'draft': ").
struct Declaring {
  std::string name;
  std::string where;
  std::string prefix;
};

// Starts the second call of keel.fn, keel.agent (`what` is "node"),
// keel.provider or keel.workflow: upvalue 1 is the name, the table at kGiven
// holds `contents`. Pushes the declaration table (kDecl) holding name
// and where. Providers and workflows are refused once the script has loaded.
// Returns 0, or kLuaRaise with the message pushed.
int BeginDeclaration(lua_State* L, const std::string& what, const std::string& contents,
                     Declaring* d, const char* name = nullptr);

// Checks every option in the table at kGiven against what `owner` accepts and
// stores its value in the slot of its OptionStore; an agent's tool functions
// go to the declaration's `tool_runs`. Returns 0, or kLuaRaise with the
// message pushed.
int StoreOptions(lua_State* L, unsigned owner, const std::string& prefix);

// Appends the declaration at kDecl to the registry list at `list_key` unless
// that list has an entry called d.name already. Returns the number of entries
// before it, or kLuaRaise with the message pushed.
int Register(lua_State* L, const void* list_key, const char* what, const Declaring& d);

// keel.workflow "name" and keel.provider "name": checks the name and returns
// `second`, the function taking the table, with the name as its upvalue.
int DeclarationName(lua_State* L, const std::string& what, lua_CFunction second);

// Explains why item `i` of a workflow, at the top of the stack, is not a node
// declaration (node_declarations.cc).
std::string NotANode(lua_State* L, lua_Integer i);

// The first call of each declaration function, `name` or a table: keel.fn
// and the other node kinds (upvalue 1 the kind), keel.provider,
// keel.workflow. Registered through LuaTrampoline.
int NodeName(lua_State* L);
int ProviderName(lua_State* L);
int WorkflowName(lua_State* L);

}  // namespace keel::declaration
