#pragma once
// Replaying a script: how the Lua states after a script's first one run it.
//
// The first state of a LuaStatePool runs the script to declare its
// workflows: every option is checked and converted, every declaration read
// back. Later states run the same script only to get their own copies of the
// node functions (closures over the script's own upvalues and `require`d
// modules, so they cannot be copied from the first state). In such a state
// `keel.fn "name" { ... }` skips the option checks the first run already
// made and keeps only what the reader needs: the name and the function-valued
// options. A script that declares something else the second time is caught
// by the pool's layout check.
//
// Thread-safety: functions here touch one lua_State and run on the thread
// that holds it.

#include <string>

struct lua_State;

namespace keel {

// Marks L as replaying while its script's top level runs (`on`), or no
// longer (after it ran: keel.fn called by a node declares in full).
void SetReplaying(lua_State* L, bool on);

// True while L is replaying its script's top level.
bool IsReplaying(lua_State* L);

// `keel.fn "name" { options }` in a replaying state: upvalue 1 is the name,
// the options table is at index 1. Returns a node declaration (the
// declaration metatable set) holding `name` and the options whose values are
// functions, under their own names. Always returns 1 value.
int ReplayFnOptions(lua_State* L);

// The compiled form of the chunk at the top of L's stack (a function from
// luaL_load*), with its debug information, so that replaying states load it
// instead of parsing the text again. Returns "" when it cannot be dumped.
std::string DumpChunk(lua_State* L);

}  // namespace keel
