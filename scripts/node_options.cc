#include "scripts/node_options.h"

#include <array>
#include <cmath>

#include "lua.hpp"
#include "scripts/declarations.h"
#include "scripts/lua_json.h"

namespace keel {
namespace {

constexpr NodeOption kNodeOptions[] = {
    {"after", NodeOptionType::kNames, false},
    {"when", NodeOptionType::kFunction, false},
    {"optional", NodeOptionType::kBoolean, false},
    {"run", NodeOptionType::kFunction, false},
    {"timeout", NodeOptionType::kSeconds, true},
    {"total_timeout", NodeOptionType::kSeconds, true},
    {"retry", NodeOptionType::kTableOrCount, true},
    {"circuit", NodeOptionType::kCircuit, true},
    {"fallback", NodeOptionType::kFallback, true},
    {"join", NodeOptionType::kJoin, true},
    {"memory", NodeOptionType::kSize, true},
    {"max_concurrency", NodeOptionType::kTableOrCount, true},
};

// True when the value at `index` is a list (keys 1..n, n >= 0) whose items
// all satisfy `item`.
template <typename Pred>
bool IsListOf(lua_State* L, int index, Pred item) {
  if (lua_type(L, index) != LUA_TTABLE) return false;
  lua_Integer n = static_cast<lua_Integer>(lua_rawlen(L, index));
  lua_Integer count = 0;
  lua_pushnil(L);
  while (lua_next(L, index) != 0) {
    lua_pop(L, 1);
    ++count;
  }
  if (count != n) return false;
  for (lua_Integer i = 1; i <= n; ++i) {
    lua_rawgeti(L, index, i);
    bool ok = item(lua_gettop(L));
    lua_pop(L, 1);
    if (!ok) return false;
  }
  return true;
}

bool IsPositiveNumber(lua_State* L, int index) {
  return lua_type(L, index) == LUA_TNUMBER && lua_tonumber(L, index) > 0 &&
         std::isfinite(lua_tonumber(L, index));
}

bool IsCount(lua_State* L, int index) {
  int is_integer = 0;
  lua_Integer n = lua_tointegerx(L, index, &is_integer);
  return lua_type(L, index) == LUA_TNUMBER && is_integer && n >= 1;
}

bool IsWorkflowRef(lua_State* L, int index) {
  return lua_type(L, index) == LUA_TSTRING || IsWorkflowObject(L, index);
}

void PushWorkflowName(lua_State* L, int index) {
  if (lua_type(L, index) == LUA_TSTRING) {
    lua_pushvalue(L, index);
  } else {
    index = lua_absindex(L, index);
    lua_pushliteral(L, "name");
    lua_rawget(L, index);
  }
}

constexpr auto kNodeOptionNames = [] {
  std::array<std::string_view, std::size(kNodeOptions)> names{};
  for (size_t i = 0; i < names.size(); ++i) names[i] = kNodeOptions[i].name;
  return names;
}();

}  // namespace

const NodeOption* FindNodeOption(std::string_view name) {
  for (const NodeOption& rule : kNodeOptions) {
    if (rule.name == name) return &rule;
  }
  return nullptr;
}

std::span<const std::string_view> NodeOptionNames() { return kNodeOptionNames; }

std::string CheckNodeOption(lua_State* L, int index, const NodeOption& option) {
  index = lua_absindex(L, index);
  NodeOptionType type = option.type;
  auto is_string = [L](int i) { return lua_type(L, i) == LUA_TSTRING; };
  switch (type) {
    case NodeOptionType::kNames:
      if (is_string(index) || IsListOf(L, index, is_string)) return "";
      return "must be a node name or a list of node names";
    case NodeOptionType::kFunction:
      return lua_type(L, index) == LUA_TFUNCTION ? "" : "must be a function";
    case NodeOptionType::kBoolean:
      return lua_type(L, index) == LUA_TBOOLEAN ? "" : "must be true or false";
    case NodeOptionType::kSeconds:
      return IsPositiveNumber(L, index) ? "" : "must be a positive number of seconds";
    case NodeOptionType::kSize:
      if (IsPositiveNumber(L, index) || is_string(index)) return "";
      return "must be a number of MiB or a size such as \"64MB\"";
    case NodeOptionType::kTableOrCount:
      if (lua_type(L, index) == LUA_TTABLE || IsCount(L, index)) return "";
      return "must be a table or a positive integer";
    case NodeOptionType::kCircuit:
      if (lua_type(L, index) == LUA_TTABLE || lua_type(L, index) == LUA_TBOOLEAN) return "";
      if (is_string(index) && lua_rawlen(L, index) > 0) return "";
      return "must be a table, true, or a breaker key";
    case NodeOptionType::kFallback:
      if (IsWorkflowRef(L, index)) return "";
      if (IsListOf(L, index, [L](int i) { return IsWorkflowRef(L, i); })) return "";
      return "must be a workflow (or its name) or a list of them";
    case NodeOptionType::kJoin:
      if (lua_type(L, index) == LUA_TTABLE) return "";
      if (is_string(index)) {
        std::string_view join = lua_tostring(L, index);
        if (join == "all" || join == "any") return "";
      }
      return "must be \"all\", \"any\", { quorum = k } or { best_effort = seconds }";
  }
  return "";
}

void PushNodeOption(lua_State* L, int index, const NodeOption& option) {
  index = lua_absindex(L, index);
  NodeOptionType type = option.type;
  bool single =
      type == NodeOptionType::kNames ? lua_type(L, index) == LUA_TSTRING : IsWorkflowRef(L, index);
  if (type == NodeOptionType::kFallback && single) {
    PushWorkflowName(L, index);
    return;
  }
  if (type != NodeOptionType::kNames && type != NodeOptionType::kFallback) {
    lua_pushvalue(L, index);
    return;
  }
  lua_Integer n = single ? 1 : static_cast<lua_Integer>(lua_rawlen(L, index));
  lua_createtable(L, static_cast<int>(n), 0);
  PushArrayMarker(L);
  lua_setmetatable(L, -2);
  for (lua_Integer i = 1; i <= n; ++i) {
    if (single) {
      lua_pushvalue(L, index);
    } else {
      lua_rawgeti(L, index, i);
      if (type == NodeOptionType::kFallback) {
        PushWorkflowName(L, -1);
        lua_remove(L, -2);
      }
    }
    lua_rawseti(L, -2, i);
  }
}

}  // namespace keel
