#pragma once
// The DSL half of keel.map, keel.call and keel.loop: what each declaration
// needs besides its options' own checks, and reading their fields back.
// Called on the thread holding the lua_State, like all declaration code;
// never raises (see lua_trampoline.h).

#include <string>

#include "scripts/declarations.h"

struct lua_State;

namespace keel {

// What the map, call or loop declaration table at `decl` (`owner` is
// kMapOption, kCallOption or kLoopOption) lacks or has too much of, or "".
std::string CheckDynamicDeclaration(lua_State* L, int decl, unsigned owner);

// Reads the fields of the map, call or loop declaration at `decl` into
// *node and the registry references of its over / params / done_when into
// *functions. The inner node of a map is left to the caller.
void ReadDynamicNode(lua_State* L, int decl, NodeDeclaration* node, NodeFunctions* functions);

}  // namespace keel
