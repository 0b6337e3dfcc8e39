// keel.workflow "name" { entries } (see declarations.h): the workflow's
// options (params, defaults, budget, on_failure), its nodes in order, the
// workflow registered in the state.

#include <algorithm>
#include <string>
#include <string_view>

#include "engine/did_you_mean.h"
#include "lua.hpp"
#include "scripts/declaration_building.h"
#include "scripts/declaration_registry.h"
#include "scripts/lua_json.h"
#include "scripts/lua_trampoline.h"
#include "scripts/node_options.h"

namespace keel::declaration {
namespace {

constexpr std::string_view kWorkflowOptionNames[] = {"params", "defaults", "budget", "on_failure"};

// Stores the workflow option `budget` at 5 into the workflow table at 2.
int SetBudget(lua_State* L, const std::string& prefix) {
  std::string problem = CheckBudget(L, 5);
  if (!problem.empty()) return Raise(L, prefix + problem);
  RawField(L, 5, "tokens");
  lua_setfield(L, 2, "budget_tokens");
  RawField(L, 5, "cost");
  lua_setfield(L, 2, "budget_cost");
  return 0;
}

// Stores the workflow option `on_failure` at 5 into the workflow table at 2:
// the name of a workflow (whether one is declared is checked once the file
// has loaded, by ValidateEscalations).
int SetOnFailure(lua_State* L, const std::string& prefix) {
  if (lua_type(L, 5) != LUA_TSTRING || !IsValidName(lua_tostring(L, 5))) {
    std::string got = lua_type(L, 5) == LUA_TSTRING ? "'" + std::string(lua_tostring(L, 5)) + "'"
                                                    : std::string("a ") + luaL_typename(L, 5);
    return Raise(L, prefix + "option 'on_failure' must be the name of a workflow to run when a "
                             "run fails, got " + got);
  }
  lua_pushvalue(L, 5);
  lua_setfield(L, 2, "on_failure");
  return 0;
}

// Stores the workflow option at 4/5 (key/value) into the workflow table at 2.
int SetWorkflowOption(lua_State* L, const std::string& prefix) {
  std::string key = lua_tostring(L, 4);
  if (key == "budget") return SetBudget(L, prefix);
  if (key == "on_failure") return SetOnFailure(L, prefix);
  if (key != "params" && key != "defaults") {
    return Raise(L,
                 prefix + "unknown option '" + key + "'" + DidYouMean(key, kWorkflowOptionNames));
  }
  std::string expected = prefix + "option '" + key + "' must be a table of name = value";
  if (lua_type(L, 5) != LUA_TTABLE) return Raise(L, expected + ", got " + luaL_typename(L, 5));
  std::string json;
  Status status = LuaToJson(L, 5, &json);
  if (!status.ok()) return Raise(L, prefix + "option '" + key + "': " + status.message());
  if (json.front() != '{') return Raise(L, expected + ", not a list");
  SetString(L, 2, key.c_str(), json);
  return 0;
}

// keel.workflow "name" { entries }: the second call. Upvalue 1 is the name.
int WorkflowEntries(lua_State* L) {
  Declaring d;
  if (BeginDeclaration(L, "workflow", "nodes and options", &d) == kLuaRaise) {
    return kLuaRaise;
  }
  const std::string& prefix = d.prefix;
  lua_createtable(L, 0, 0);  // 3: its nodes
  SetString(L, 2, "params", "{}");
  SetString(L, 2, "defaults", "{}");
  lua_Integer last = 0;
  lua_pushnil(L);
  while (lua_next(L, 1) != 0) {  // key at 4, value at 5
    if (lua_type(L, 4) == LUA_TSTRING) {
      if (SetWorkflowOption(L, prefix) == kLuaRaise) return kLuaRaise;
    } else if (lua_isinteger(L, 4) && lua_tointeger(L, 4) >= 1) {
      last = std::max(last, lua_tointeger(L, 4));
    } else {
      return Raise(L, prefix + "unexpected " + luaL_typename(L, 4) + " key");
    }
    lua_settop(L, 4);
  }
  lua_Integer count = 0;
  for (lua_Integer i = 1; i <= last; ++i) {
    lua_rawgeti(L, 1, i);
    if (lua_isnil(L, -1)) {  // `cond and keel.fn ... or nil` leaves holes
      lua_pop(L, 1);
      continue;
    }
    if (!HasMeta(L, -1, &kNodeMetaKey)) return Raise(L, prefix + NotANode(L, i));
    if (RawString(L, -1, "name").empty()) {
      return Raise(L, prefix + "item " + std::to_string(i) +
                          " is a node without a name: name it (keel.fn \"name\" { ... }) or make "
                          "it a keel.map's `node`");
    }
    lua_rawseti(L, 3, ++count);
  }
  lua_setfield(L, 2, "nodes");
  lua_settop(L, 2);
  int index = Register(L, &kWorkflowListKey, "workflow", d);
  if (index == kLuaRaise) return kLuaRaise;
  lua_pushinteger(L, index);
  lua_setfield(L, 2, "index");
  lua_rawgetp(L, LUA_REGISTRYINDEX, &kWorkflowMetaKey);
  lua_setmetatable(L, 2);
  return 1;
}

}  // namespace

int WorkflowName(lua_State* L) {
  return DeclarationName(L, "workflow", &LuaTrampoline<WorkflowEntries>);
}

}  // namespace keel::declaration
