#include "scripts/option_values.h"

#include <cctype>
#include <cmath>
#include <cstdio>

#include "nodes/schema_check.h"
#include "scripts/declarations.h"
#include "scripts/lua_json.h"

namespace keel::option_values {

bool IsString(lua_State* L, int index) { return lua_type(L, index) == LUA_TSTRING; }
bool IsTable(lua_State* L, int index) { return lua_type(L, index) == LUA_TTABLE; }
bool IsFunction(lua_State* L, int index) { return lua_type(L, index) == LUA_TFUNCTION; }

bool IsFiniteNumber(lua_State* L, int index) {
  return lua_type(L, index) == LUA_TNUMBER && std::isfinite(lua_tonumber(L, index));
}

bool IsPositiveNumber(lua_State* L, int index) {
  return IsFiniteNumber(L, index) && lua_tonumber(L, index) > 0;
}

bool IsNonNegative(lua_State* L, int index) {
  return IsFiniteNumber(L, index) && lua_tonumber(L, index) >= 0;
}

bool IsSeconds(lua_State* L, int index) {
  return IsPositiveNumber(L, index) && lua_tonumber(L, index) <= kMaxSeconds;
}

bool IsSecondsOrZero(lua_State* L, int index) {
  return IsNonNegative(L, index) && lua_tonumber(L, index) <= kMaxSeconds;
}

bool IsPrice(lua_State* L, int index) {
  return IsNonNegative(L, index) && lua_tonumber(L, index) <= kMaxPrice;
}

bool IsIntegerAtLeast(lua_State* L, int index, lua_Integer least) {
  int is_integer = 0;
  lua_Integer n = lua_tointegerx(L, index, &is_integer);
  return lua_type(L, index) == LUA_TNUMBER && is_integer && n >= least;
}

bool IsCount(lua_State* L, int index) {
  return IsIntegerAtLeast(L, index, 1) && lua_tointeger(L, index) <= kMaxCount;
}

bool IsPositiveInteger(lua_State* L, int index) { return IsIntegerAtLeast(L, index, 1); }

bool IsHedgeMax(lua_State* L, int index) {
  return IsIntegerAtLeast(L, index, 2) && lua_tointeger(L, index) <= kMaxCount;
}

std::string Describe(lua_State* L, int index) {
  if (lua_type(L, index) != LUA_TNUMBER) return luaL_typename(L, index);
  if (lua_isinteger(L, index)) return std::to_string(lua_tointeger(L, index));
  double value = lua_tonumber(L, index);
  if (std::isnan(value)) return "nan";  // printf may say "-nan"
  char text[32];
  snprintf(text, sizeof(text), "%.14g", value);
  return text;
}

// True when the string at `index` is one of `words`.
bool IsOneOf(lua_State* L, int index, std::initializer_list<std::string_view> words) {
  if (!IsString(L, index)) return false;
  std::string_view word = lua_tostring(L, index);
  return std::find(words.begin(), words.end(), word) != words.end();
}

bool IsRole(lua_State* L, int index) { return IsOneOf(L, index, {"system", "user", "assistant"}); }

bool IsAlnum(char c) { return isalnum(static_cast<unsigned char>(c)) != 0; }

// What the OpenAI API accepts as a function name.
bool IsToolName(lua_State* L, int index) {
  return IsWord(L, index, 1, 64, [](char c) { return IsAlnum(c) || c == '_' || c == '-'; });
}

bool IsEnvName(lua_State* L, int index) {
  if (IsString(L, index) && isdigit(static_cast<unsigned char>(*lua_tostring(L, index)))) {
    return false;
  }
  return IsWord(L, index, 1, 255, [](char c) { return IsAlnum(c) || c == '_'; });
}

// An HTTP header name (an RFC 9110 token).
bool IsHeaderName(lua_State* L, int index) {
  return IsWord(L, index, 1, 255, [](char c) {
    return IsAlnum(c) || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
  });
}

bool IsHeaderValue(lua_State* L, int index) {
  return IsWord(L, index, 0, 8192, [](char c) { return c != '\r' && c != '\n' && c != '\0'; });
}

// Empty when the table at `index` converts to a JSON object that is a valid
// JSON Schema; otherwise why not.
std::string JsonObjectProblem(lua_State* L, int index) {
  std::string json;
  Status status = LuaToJson(L, index, &json);
  if (!status.ok()) return status.message();
  if (json.front() != '{') return "a JSON schema is an object, not a list";
  return SchemaProblem(json);
}

bool IsJsonObject(lua_State* L, int index) {
  return IsTable(L, index) && JsonObjectProblem(L, index).empty();
}

bool IsWorkflowRef(lua_State* L, int index) {
  return lua_type(L, index) == LUA_TSTRING || IsWorkflowObject(L, index);
}

bool IsFallbackRule(lua_State* L, int index) {
  if (!IsTable(L, index) || IsWorkflowObject(L, index)) return false;
  index = lua_absindex(L, index);
  bool ok = true;
  bool has_workflow = false;
  lua_pushnil(L);
  while (ok && lua_next(L, index) != 0) {
    std::string_view key = IsString(L, -2) ? lua_tostring(L, -2) : "";
    if (key == "workflow") {
      has_workflow = ok = IsWorkflowRef(L, -1);
    } else if (key == "on") {
      ok = IsString(L, -1) || IsListOf(L, lua_gettop(L), [L](int i) { return IsString(L, i); });
    } else {
      ok = false;
    }
    lua_pop(L, 1);
  }
  if (!ok) lua_pop(L, 1);  // the key lua_next left
  return ok && has_workflow;
}

}  // namespace keel::option_values
