// The markers of lua_json.h: the array and object marker metatables in a
// state's registry and the keel.null sentinel. The conversions themselves
// are in lua_json_encode.cc (Lua -> JSON) and lua_json_decode.cc (JSON -> Lua).

#include "scripts/lua_json.h"

#include "lua.hpp"

namespace keel {
namespace {

// Addresses used as registry keys and as the keel.null sentinel.
char kArrayMarkerKey;
char kObjectMarkerKey;
char kNullSentinel;

void PushMarker(lua_State* L, const void* key) { lua_rawgetp(L, LUA_REGISTRYINDEX, key); }

}  // namespace

void InstallJsonMarkers(lua_State* L) {
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "keel.array");
  lua_setfield(L, -2, "__name");
  lua_rawsetp(L, LUA_REGISTRYINDEX, &kArrayMarkerKey);
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "keel.object");
  lua_setfield(L, -2, "__name");
  lua_rawsetp(L, LUA_REGISTRYINDEX, &kObjectMarkerKey);
}

void PushJsonNull(lua_State* L) { lua_pushlightuserdata(L, &kNullSentinel); }

bool IsJsonNull(lua_State* L, int index) {
  return lua_type(L, index) == LUA_TLIGHTUSERDATA && lua_touserdata(L, index) == &kNullSentinel;
}

void PushArrayMarker(lua_State* L) { PushMarker(L, &kArrayMarkerKey); }
void PushObjectMarker(lua_State* L) { PushMarker(L, &kObjectMarkerKey); }

}  // namespace keel
