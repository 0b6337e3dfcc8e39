#pragma once
// Value predicates of the DSL options (scripts/node_options.cc): whether the
// Lua value at a stack index has the shape an option, or a field of a
// table option, takes. They read the stack, leave it as it was and never
// raise. Thread-safety: as for the lua_State.

#include <algorithm>
#include <initializer_list>
#include <string>
#include <string_view>

#include "lua.hpp"

namespace keel::option_values {

bool IsString(lua_State* L, int index);
bool IsTable(lua_State* L, int index);
bool IsFunction(lua_State* L, int index);
// The most seconds a duration option may be (about 31 years): far beyond
// any real wait, yet small enough that clock arithmetic stays exact.
inline constexpr double kMaxSeconds = 1e9;
// The most a provider may charge per million tokens.
inline constexpr double kMaxPrice = 1e6;
// The largest count option (max_tokens, max_concurrency, ...).
inline constexpr lua_Integer kMaxCount = 2147483647;

bool IsFiniteNumber(lua_State* L, int index);
bool IsPositiveNumber(lua_State* L, int index);
bool IsNonNegative(lua_State* L, int index);
bool IsSeconds(lua_State* L, int index);        // in (0, kMaxSeconds]
bool IsSecondsOrZero(lua_State* L, int index);  // in [0, kMaxSeconds]
bool IsPrice(lua_State* L, int index);          // in [0, kMaxPrice]
bool IsIntegerAtLeast(lua_State* L, int index, lua_Integer least);
bool IsCount(lua_State* L, int index);            // an integer in [1, kMaxCount]
bool IsPositiveInteger(lua_State* L, int index);  // an integer of at least 1
bool IsHedgeMax(lua_State* L, int index);         // an integer in [2, kMaxCount]
// What a message says of the value at `index` after "got": a number as
// itself ("-1", "2.5", "inf", "nan"), anything else as its type name. A
// string is never quoted: it may be a secret.
std::string Describe(lua_State* L, int index);
// True when the string at `index` is one of `words`.
bool IsOneOf(lua_State* L, int index, std::initializer_list<std::string_view> words);
bool IsRole(lua_State* L, int index);  // "system", "user" or "assistant"
bool IsAlnum(char c);
// What the OpenAI API accepts as a function name.
bool IsToolName(lua_State* L, int index);
bool IsEnvName(lua_State* L, int index);
// An HTTP header name (an RFC 9110 token), and a value without line breaks.
bool IsHeaderName(lua_State* L, int index);
bool IsHeaderValue(lua_State* L, int index);
// Empty when the table at `index` converts to a JSON object that is a valid
// JSON Schema; otherwise why not.
std::string JsonObjectProblem(lua_State* L, int index);
bool IsJsonObject(lua_State* L, int index);
// A workflow declaration or a workflow name.
bool IsWorkflowRef(lua_State* L, int index);
// A `fallback` entry picked by error kind: { on = kind | { kinds... }, workflow = ref }.
bool IsFallbackRule(lua_State* L, int index);

// True when every character of the string at `index` passes `ok`, and the
// string has `min` to `max` characters.
template <typename Pred>
bool IsWord(lua_State* L, int index, size_t min, size_t max, Pred ok) {
  if (!IsString(L, index)) return false;
  size_t len = 0;
  const char* s = lua_tolstring(L, index, &len);
  return len >= min && len <= max && std::all_of(s, s + len, ok);
}

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

}  // namespace keel::option_values
