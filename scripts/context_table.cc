#include "scripts/context_table.h"

#include <string_view>

#include "lua.hpp"
#include "scripts/active_node.h"
#include "scripts/lua_json.h"
#include "scripts/lua_trampoline.h"

namespace keel {
namespace {

char kContextMetaKey;

constexpr const char* kLazyFields[] = {"params", "deps", "skipped", "failed", "failure"};

void PushNames(lua_State* L, const std::vector<std::string>& names) {
  lua_createtable(L, static_cast<int>(names.size()), 0);
  PushArrayMarker(L);
  lua_setmetatable(L, -2);
  for (size_t i = 0; i < names.size(); ++i) {
    lua_pushlstring(L, names[i].data(), names[i].size());
    lua_rawseti(L, -2, static_cast<lua_Integer>(i + 1));
  }
}

// Sets t[field] = value for the table on top of the stack. Pushing the key
// with its length skips the strcmp-based cache lua_setfield goes through.
void SetString(lua_State* L, std::string_view field, std::string_view value) {
  lua_pushlstring(L, field.data(), field.size());
  lua_pushlstring(L, value.data(), value.size());
  lua_rawset(L, -3);
}

// Pushes the lazy field `name` of `ctx`, or an error message (returning false).
bool PushField(lua_State* L, const NodeContext& ctx, std::string_view name) {
  if (name == "skipped" || name == "failed") {
    PushNames(L, name == "skipped" ? ctx.skipped : ctx.failed);
    return true;
  }
  if (name == "params" || name == "failure") {
    const JsonText& value = name == "params" ? ctx.params : ctx.failure;
    if (value == nullptr) {
      if (name == "params") lua_createtable(L, 0, 0);
      else lua_pushnil(L);
      return true;
    }
    Status status = PushJson(L, *value);
    if (!status.ok()) lua_pushfstring(L, "ctx.%s: %s", name.data(), status.message().c_str());
    return status.ok();
  }
  lua_createtable(L, 0, static_cast<int>(ctx.deps.size()));
  for (const auto& [dep, output] : ctx.deps) {
    lua_pushlstring(L, dep.data(), dep.size());
    if (output == nullptr) {
      lua_pushnil(L);
    } else if (Status status = PushJson(L, *output); !status.ok()) {
      lua_pushstring(L, ("ctx.deps." + dep + ": " + status.message()).c_str());
      return false;
    }
    lua_rawset(L, -3);
  }
  return true;
}

// The execution's NodeContext when `ctx` (at index 1) belongs to the
// execution holding the state; else null with an error message pushed.
const NodeContext* ContextOf(lua_State* L) {
  ActiveNode* active = ActiveNodeOf(L);
  if (active == nullptr || active->context_table != lua_topointer(L, 1)) {
    lua_pushstring(L, "ctx can only be used while its node runs");
    return nullptr;
  }
  return active->context;
}

// __index(ctx, key): builds a lazy field and stores it in ctx.
int ContextIndex(lua_State* L) {
  if (lua_type(L, 2) != LUA_TSTRING) return 0;
  std::string_view key = lua_tostring(L, 2);
  bool lazy = false;
  for (const char* field : kLazyFields) lazy = lazy || key == field;
  if (!lazy) return 0;
  const NodeContext* ctx = ContextOf(L);
  if (ctx == nullptr || !PushField(L, *ctx, key)) return kLuaRaise;
  lua_pushvalue(L, 2);
  lua_pushvalue(L, -2);
  lua_rawset(L, 1);
  return 1;
}

// The iterator __pairs returns: next without metamethods.
int ContextNext(lua_State* L) {
  lua_settop(L, 2);
  if (lua_next(L, 1) != 0) return 2;
  lua_pushnil(L);
  return 1;
}

// __pairs(ctx): builds every lazy field, then iterates the table.
int ContextPairs(lua_State* L) {
  const NodeContext* ctx = ContextOf(L);
  if (ctx == nullptr) return kLuaRaise;
  for (const char* field : kLazyFields) {
    lua_pushstring(L, field);
    if (lua_rawget(L, 1) == LUA_TNIL) {
      lua_pushstring(L, field);
      if (!PushField(L, *ctx, field)) return kLuaRaise;
      lua_rawset(L, 1);
    }
    lua_pop(L, 1);
  }
  lua_pushcfunction(L, &ContextNext);
  lua_pushvalue(L, 1);
  lua_pushnil(L);
  return 3;
}

}  // namespace

void InstallContextTable(lua_State* L) {
  lua_createtable(L, 0, 3);
  lua_pushcfunction(L, &LuaTrampoline<ContextIndex>);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, &LuaTrampoline<ContextPairs>);
  lua_setfield(L, -2, "__pairs");
  lua_pushliteral(L, "keel.ctx");
  lua_setfield(L, -2, "__name");
  lua_rawsetp(L, LUA_REGISTRYINDEX, &kContextMetaKey);
}

void PushContextTable(lua_State* L, const NodeContext& ctx) {
  lua_createtable(L, 0, 9);
  SetString(L, "run_id", ctx.run_id);
  SetString(L, "workflow", ctx.workflow);
  SetString(L, "node", ctx.node);
  SetString(L, "idempotency_key", ctx.IdempotencyKey());
  lua_pushlstring(L, "attempt", 7);
  lua_pushinteger(L, ctx.attempt);
  lua_rawset(L, -3);
  if (ctx.index > 0) {  // a keel.map item
    lua_pushlstring(L, "index", 5);
    lua_pushinteger(L, ctx.index);
    lua_rawset(L, -3);
    lua_pushlstring(L, "item", 4);
    if (ctx.item == nullptr || !PushJson(L, *ctx.item).ok()) lua_pushnil(L);
    lua_rawset(L, -3);
  }
  lua_rawgetp(L, LUA_REGISTRYINDEX, &kContextMetaKey);
  lua_setmetatable(L, -2);
}

}  // namespace keel
