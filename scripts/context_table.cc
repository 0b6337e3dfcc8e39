#include "scripts/context_table.h"

#include "lua.hpp"
#include "scripts/lua_json.h"

namespace keel {
namespace {

void PushNames(lua_State* L, const std::vector<std::string>& names) {
  lua_createtable(L, static_cast<int>(names.size()), 0);
  PushArrayMarker(L);
  lua_setmetatable(L, -2);
  for (size_t i = 0; i < names.size(); ++i) {
    lua_pushlstring(L, names[i].data(), names[i].size());
    lua_rawseti(L, -2, static_cast<lua_Integer>(i + 1));
  }
}

void SetString(lua_State* L, const char* field, const std::string& value) {
  lua_pushlstring(L, value.data(), value.size());
  lua_setfield(L, -2, field);
}

}  // namespace

Status PushContextTable(lua_State* L, const NodeContext& ctx) {
  int top = lua_gettop(L);
  lua_createtable(L, 0, 10);
  if (ctx.params != nullptr) {
    Status status = PushJson(L, *ctx.params);
    if (!status.ok()) {
      lua_settop(L, top);
      return Status::Error(ErrorKind::kPermanent, "params: " + status.message());
    }
  } else {
    lua_createtable(L, 0, 0);
  }
  lua_setfield(L, -2, "params");
  lua_createtable(L, 0, static_cast<int>(ctx.deps.size()));
  for (const auto& [name, output] : ctx.deps) {
    lua_pushlstring(L, name.data(), name.size());
    if (output != nullptr) {
      Status status = PushJson(L, *output);
      if (!status.ok()) {
        lua_settop(L, top);
        return Status::Error(ErrorKind::kPermanent,
                             "output of dependency '" + name + "': " + status.message());
      }
    } else {
      lua_pushnil(L);
    }
    lua_rawset(L, -3);
  }
  lua_setfield(L, -2, "deps");
  PushNames(L, ctx.skipped);
  lua_setfield(L, -2, "skipped");
  PushNames(L, ctx.failed);
  lua_setfield(L, -2, "failed");
  SetString(L, "run_id", ctx.run_id);
  SetString(L, "workflow", ctx.workflow);
  SetString(L, "node", ctx.node);
  SetString(L, "idempotency_key", ctx.IdempotencyKey());
  lua_pushinteger(L, ctx.attempt);
  lua_setfield(L, -2, "attempt");
  return Status::Ok();
}

}  // namespace keel
