#include "scripts/declaration_replay.h"

#include "lua.hpp"
#include "scripts/declaration_registry.h"

namespace keel {
namespace {

char kReplayingKey;

int AppendChunk(lua_State*, const void* bytes, size_t size, void* out) {
  static_cast<std::string*>(out)->append(static_cast<const char*>(bytes), size);
  return 0;
}

}  // namespace

void SetReplaying(lua_State* L, bool on) {
  lua_pushboolean(L, on);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &kReplayingKey);
}

bool IsReplaying(lua_State* L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &kReplayingKey);
  bool replaying = lua_toboolean(L, -1) != 0;
  lua_pop(L, 1);
  return replaying;
}

int ReplayFnOptions(lua_State* L) {
  lua_settop(L, 1);
  lua_createtable(L, 0, 4);  // 2: the declaration
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_setfield(L, 2, "name");
  lua_pushliteral(L, "fn");
  lua_setfield(L, 2, "kind");
  lua_pushnil(L);
  while (lua_next(L, 1) != 0) {  // key at 3, value at 4
    if (lua_type(L, 3) == LUA_TSTRING && lua_type(L, 4) == LUA_TFUNCTION) {
      lua_pushvalue(L, 3);
      lua_insert(L, -2);
      lua_rawset(L, 2);
    } else {
      lua_pop(L, 1);
    }
  }
  lua_rawgetp(L, LUA_REGISTRYINDEX, &declaration::kNodeMetaKey);
  lua_setmetatable(L, 2);
  return 1;
}

std::string DumpChunk(lua_State* L) {
  std::string chunk;
  if (lua_dump(L, &AppendChunk, &chunk, 0) != 0) return "";
  return chunk;
}

}  // namespace keel
