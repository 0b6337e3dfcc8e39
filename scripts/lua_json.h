#pragma once
// Conversions between Lua values and JSON text, exact in both directions.
//
// Integers stay integers and floats stay floats (1.0 is written "1.0"), so a
// value survives Lua -> JSON -> Lua and JSON -> Lua -> JSON unchanged. Object
// keys are written sorted, so equal values always give equal text.
//
// Markers: a JSON array decodes to a table whose metatable is the shared
// array marker (keel.array), so `[]` round-trips as `[]`; an unmarked empty
// table encodes as `{}`; the object marker (keel.object) forces an object.
// JSON null inside an array or object decodes to keel.null (a light
// userdata); a top-level null decodes to nil.
//
// Neither direction runs Lua code (no metamethods) and neither raises a Lua
// error as long as allocations succeed, so both may be called from C++ with
// the state's memory cap disarmed (see lua_alloc.h). Functions here are safe
// to call from any thread that owns the lua_State at the time.

#include <string>
#include <string_view>

#include "engine/status.h"
#include "nodes/json_depth.h"

struct lua_State;

namespace keel {

// kMaxJsonDepth (nodes/json_depth.h) bounds the nesting in either direction.

// Creates the array and object marker metatables in the registry of L. Call
// once per state before any other function here.
void InstallJsonMarkers(lua_State* L);

// Pushes keel.null; tells whether the value at `index` is keel.null.
void PushJsonNull(lua_State* L);
bool IsJsonNull(lua_State* L, int index);

// Pushes the shared array (or object) marker metatable.
void PushArrayMarker(lua_State* L);
void PushObjectMarker(lua_State* L);

// Appends the JSON text of the value at `index` to *out. On failure returns
// kPermanent whose message names the path inside the value, such as
// "at .items[3].f: a function cannot be JSON"; *out is then unspecified.
// Leaves the Lua stack as it found it.
Status LuaToJson(lua_State* L, int index, std::string* out);

// Decodes `json` and pushes the one value it holds. On failure pushes nothing
// and returns kPermanent naming the byte offset of the problem.
Status PushJson(lua_State* L, std::string_view json);

}  // namespace keel
