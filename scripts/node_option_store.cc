// The stored form of a checked DSL option (PushOption, PushToolFunctions of
// node_options.h): node and workflow lists as arrays, workflows as their
// names, hedge and tools with their defaults.

#include <string>

#include "lua.hpp"
#include "scripts/lua_json.h"
#include "scripts/node_options.h"
#include "scripts/option_values.h"

namespace keel {
namespace {

using namespace option_values;
using enum OptionType;

void PushWorkflowName(lua_State* L, int index) {
  if (lua_type(L, index) == LUA_TSTRING) {
    lua_pushvalue(L, index);
  } else {
    index = lua_absindex(L, index);
    lua_pushliteral(L, "name");
    lua_rawget(L, index);
  }
}

// Pushes a `fallback` entry as JSON-ready data: a workflow's name, or
// { on = { kinds... }, workflow = name } for a rule.
void PushFallbackEntry(lua_State* L, int index) {
  if (IsWorkflowRef(L, index)) return PushWorkflowName(L, index);
  index = lua_absindex(L, index);
  lua_createtable(L, 0, 2);
  lua_pushliteral(L, "workflow");
  lua_rawget(L, index);
  PushWorkflowName(L, -1);
  lua_remove(L, -2);
  lua_setfield(L, -2, "workflow");
  lua_pushliteral(L, "on");
  lua_rawget(L, index);
  if (!lua_isnil(L, -1)) {
    int on = lua_gettop(L);
    lua_createtable(L, 1, 0);
    PushArrayMarker(L);
    lua_setmetatable(L, -2);
    if (IsString(L, on)) {
      lua_pushvalue(L, on);
      lua_rawseti(L, -2, 1);
    } else {
      for (lua_Integer k = 1; k <= static_cast<lua_Integer>(lua_rawlen(L, on)); ++k) {
        lua_rawgeti(L, on, k);
        lua_rawseti(L, -2, k);
      }
    }
    lua_setfield(L, -3, "on");
  }
  lua_pop(L, 1);
}

// Pushes table[field] without metamethods; when it is nil, what `fallback`
// pushes instead (unless `fallback` is null).
void PushFieldOr(lua_State* L, int table, const char* field, void (*fallback)(lua_State*)) {
  lua_pushstring(L, field);
  lua_rawget(L, table);
  if (lua_isnil(L, -1) && fallback != nullptr) {
    lua_pop(L, 1);
    fallback(L);
  }
}

// Pushes the stored form of a hedge table: { delay, max }, max defaulting to 2.
void PushHedge(lua_State* L, int index) {
  lua_createtable(L, 0, 2);
  PushFieldOr(L, index, "delay", nullptr);
  lua_setfield(L, -2, "delay");
  PushFieldOr(L, index, "max", [](lua_State* S) { lua_pushinteger(S, 2); });
  lua_setfield(L, -2, "max");
}

// Pushes the stored form of a tools table: NAME = { description, parameters },
// description defaulting to "" and parameters to an empty object schema.
void PushTools(lua_State* L, int index) {
  lua_createtable(L, 0, 4);
  lua_pushnil(L);
  while (lua_next(L, index) != 0) {
    int tool = lua_gettop(L);
    lua_createtable(L, 0, 2);
    PushFieldOr(L, tool, "description", [](lua_State* S) { lua_pushliteral(S, ""); });
    lua_setfield(L, -2, "description");
    PushFieldOr(L, tool, "parameters", [](lua_State* S) {
      lua_createtable(S, 0, 2);
      lua_pushliteral(S, "object");
      lua_setfield(S, -2, "type");
      lua_createtable(S, 0, 0);
      lua_setfield(S, -2, "properties");
    });
    lua_setfield(L, -2, "parameters");
    lua_pushvalue(L, tool - 1);
    lua_insert(L, -2);
    lua_rawset(L, tool - 2);
    lua_pop(L, 1);
  }
}

// Pushes a node or workflow list option as an array: a single name becomes
// a list of one, workflows become their names.
void PushList(lua_State* L, int index, OptionType type) {
  bool single = type == kNames ? IsString(L, index)
                               : IsWorkflowRef(L, index) || IsFallbackRule(L, index);
  lua_Integer n = single ? 1 : static_cast<lua_Integer>(lua_rawlen(L, index));
  lua_createtable(L, static_cast<int>(n), 0);
  PushArrayMarker(L);
  lua_setmetatable(L, -2);
  for (lua_Integer i = 1; i <= n; ++i) {
    if (single) {
      lua_pushvalue(L, index);
    } else {
      lua_rawgeti(L, index, i);
    }
    if (type == kFallback) {
      PushFallbackEntry(L, -1);
      lua_remove(L, -2);
    }
    lua_rawseti(L, -2, i);
  }
}

}  // namespace

void PushOption(lua_State* L, int index, const DslOption& option) {
  index = lua_absindex(L, index);
  switch (option.type) {
    case kNames:
      return PushList(L, index, option.type);
    case kFallback:
      if (IsWorkflowRef(L, index) || IsFallbackRule(L, index)) {
        return PushFallbackEntry(L, index);
      }
      return PushList(L, index, option.type);
    case kWorkflowRef:
      return PushWorkflowName(L, index);
    case kHedge:
      return PushHedge(L, index);
    case kTools:
      return PushTools(L, index);
    default:
      lua_pushvalue(L, index);
  }
}

void PushToolFunctions(lua_State* L, int index) {
  index = lua_absindex(L, index);
  lua_createtable(L, 0, 4);
  lua_pushnil(L);
  while (lua_next(L, index) != 0) {
    lua_pushliteral(L, "run");
    lua_rawget(L, -2);
    lua_remove(L, -2);
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -4);
  }
}

}  // namespace keel
