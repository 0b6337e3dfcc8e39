#pragma once
// What the declaration functions (declarations.cc: keel.fn, keel.agent,
// keel.provider, keel.workflow) and the code reading their results back
// (declaration_reader.cc) share: the registry keys of the metatables and
// lists they keep, and raw table access. Called on the Lua state's thread
// only, like any Lua C API code.

#include <string>

#include "lua.hpp"

namespace keel::declaration {

// Registry keys: the metatables of node and workflow declarations, and the
// lists of declared workflows and providers.
extern char kNodeMetaKey;
extern char kWorkflowMetaKey;
extern char kWorkflowListKey;
extern char kProviderListKey;

// True when the value at `index` has the metatable stored at registry `key`.
bool HasMeta(lua_State* L, int index, const void* key);

// Pushes table[field] without running metamethods.
void RawField(lua_State* L, int table, const char* field);

// table[field] as a string ("" when it is not one), read raw.
std::string RawString(lua_State* L, int table, const char* field);

}  // namespace keel::declaration
