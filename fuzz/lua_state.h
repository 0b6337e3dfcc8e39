#pragma once
// FuzzLuaState: a Lua state with the standard libraries and keel's JSON
// markers, made once per fuzz process and reused, emptied after each input.
// One thread.

#include "lua.hpp"
#include "scripts/lua_json.h"

namespace keel::fuzz {

inline lua_State* FuzzLuaState() {
  static lua_State* L = [] {
    lua_State* state = luaL_newstate();
    luaL_openlibs(state);
    InstallJsonMarkers(state);
    return state;
  }();
  lua_settop(L, 0);
  return L;
}

}  // namespace keel::fuzz
