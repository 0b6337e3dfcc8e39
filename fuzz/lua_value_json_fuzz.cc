// Fuzzes Lua -> JSON (LuaToJson in scripts/lua_json.h) on arbitrary Lua
// values: the input is a program for a small stack machine that pushes
// numbers (NaN, infinities, -0.0 among them), strings of any bytes,
// keel.null, plain and marked tables, functions, userdata and coroutines,
// stores values into tables under any key, shares tables, makes cycles,
// nests deeply and attaches metatables with metamethods (which must not
// run). Properties: no crash; the stack is left as found; an accepted value
// encodes to JSON that ParseUntrustedJson takes and that survives
// JSON -> Lua -> JSON unchanged.

#include <fuzzer/FuzzedDataProvider.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>

#include "fuzz/fuzz_check.h"
#include "fuzz/lua_state.h"
#include "nodes/json_document.h"
#include "nodes/untrusted_json.h"

namespace {

constexpr int kMaxStack = 48;
char kOtherPointer;

int Trap(lua_State* L) {
  FUZZ_CHECK(false, "a metamethod ran during LuaToJson");
  return 0;
}

// A key that lua_rawset accepts: not nil, not NaN.
bool UsableKey(lua_State* L, int index) {
  if (lua_isnil(L, index)) return false;
  if (lua_type(L, index) == LUA_TNUMBER && !lua_isinteger(L, index)) {
    return !std::isnan(lua_tonumber(L, index));
  }
  return true;
}

double OddDouble(FuzzedDataProvider& in) {
  switch (in.ConsumeIntegralInRange(0, 7)) {
    case 0:
      return std::numeric_limits<double>::quiet_NaN();
    case 1:
      return std::numeric_limits<double>::infinity();
    case 2:
      return -std::numeric_limits<double>::infinity();
    case 3:
      return -0.0;
    case 4:
      return 9223372036854775808.0;  // 2^63
    case 5:
      return std::numeric_limits<double>::denorm_min();
    case 6:
      return static_cast<double>(in.ConsumeIntegral<int16_t>());  // integral floats
    default:
      return in.ConsumeFloatingPoint<double>();
  }
}

void Step(lua_State* L, FuzzedDataProvider& in) {
  int top = lua_gettop(L);
  switch (in.ConsumeIntegralInRange(0, 19)) {
    case 0:
      lua_pushnil(L);
      break;
    case 1:
      lua_pushboolean(L, in.ConsumeBool());
      break;
    case 2:
      lua_pushinteger(L, in.ConsumeIntegral<int64_t>());
      break;
    case 3:
      lua_pushinteger(L, in.ConsumeIntegralInRange<int64_t>(-2, 8));
      break;
    case 4:
      lua_pushnumber(L, OddDouble(in));
      break;
    case 5: {
      std::string s = in.ConsumeRandomLengthString(24);
      lua_pushlstring(L, s.data(), s.size());
      break;
    }
    case 6:
      keel::PushJsonNull(L);
      break;
    case 7:
      lua_newtable(L);
      break;
    case 8:
      lua_newtable(L);
      keel::PushArrayMarker(L);
      lua_setmetatable(L, -2);
      break;
    case 9:
      lua_newtable(L);
      keel::PushObjectMarker(L);
      lua_setmetatable(L, -2);
      break;
    case 10:
      switch (in.ConsumeIntegralInRange(0, 3)) {
        case 0:
          lua_pushcfunction(L, &Trap);
          break;
        case 1:
          lua_pushlightuserdata(L, &kOtherPointer);
          break;
        case 2:
          lua_newuserdatauv(L, 8, 0);
          break;
        default:
          lua_newthread(L);
          break;
      }
      break;
    case 11:
    case 12:
      // t[k] = v with t, k, v the three top values.
      if (top >= 3 && lua_istable(L, -3) && UsableKey(L, -2)) {
        lua_rawset(L, -3);
      } else if (top > 0) {
        lua_pop(L, 1);
      }
      break;
    case 13:
      // Appends the top value to the table below it.
      if (top >= 2 && lua_istable(L, -2)) {
        lua_rawseti(L, -2, static_cast<lua_Integer>(lua_rawlen(L, -2)) + 1);
      }
      break;
    case 14:
      // A cycle when the top table holds itself or a table that holds it.
      if (top >= 1 && lua_istable(L, -1)) {
        int target = in.ConsumeIntegralInRange(1, top);  // the table itself or one below
        lua_pushliteral(L, "loop");
        lua_pushvalue(L, target);
        lua_rawset(L, -3);
      }
      break;
    case 15:
      // Shares a value already on the stack.
      if (top >= 1) lua_pushvalue(L, in.ConsumeIntegralInRange(1, top));
      break;
    case 16:
      // A metatable with metamethods LuaToJson must not call.
      if (top >= 1 && lua_istable(L, -1)) {
        lua_newtable(L);
        for (const char* event : {"__index", "__newindex", "__pairs", "__len", "__tostring",
                                  "__name", "__eq", "__lt", "__le", "__call"}) {
          lua_pushcfunction(L, &Trap);
          lua_setfield(L, -2, event);
        }
        lua_setmetatable(L, -2);
      }
      break;
    case 17: {
      // Wraps the top value in N single-item tables, N up to past the depth limit.
      int n = in.ConsumeIntegralInRange(1, keel::kMaxJsonDepth + 8);
      if (top >= 1) {
        for (int i = 0; i < n; ++i) {
          lua_createtable(L, 1, 0);
          lua_insert(L, -2);
          lua_rawseti(L, -2, 1);
        }
      }
      break;
    }
    case 18:
      if (top >= 1) lua_pop(L, 1);
      break;
    default:
      // A key past a hole, or at 0.
      if (top >= 2 && lua_istable(L, -2)) {
        lua_rawseti(L, -2, in.ConsumeIntegralInRange<lua_Integer>(-1, 40));
      }
      break;
  }
  if (lua_gettop(L) > kMaxStack) lua_settop(L, kMaxStack);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace keel;
  lua_State* L = fuzz::FuzzLuaState();
  lua_checkstack(L, kMaxStack + 8);
  FuzzedDataProvider in(data, size);
  for (int steps = 0; steps < 400 && in.remaining_bytes() > 0; ++steps) Step(L, in);
  const int top = lua_gettop(L);
  if (top == 0) return 0;
  for (int index : {-1, 1}) {
    std::string json;
    Status encoded = LuaToJson(L, index, &json);
    FUZZ_CHECK(lua_gettop(L) == top, encoded.message());
    if (!encoded.ok()) {
      FUZZ_CHECK(!encoded.message().empty(), "");
      continue;
    }
    JsonDocument doc;
    Status parsed = ParseUntrustedJson(json, &doc);
    FUZZ_CHECK(parsed.ok(), parsed.message() + " in " + json);
    Status pushed = PushJson(L, json);
    FUZZ_CHECK(pushed.ok(), pushed.message() + " in " + json);
    std::string again;
    Status reencoded = LuaToJson(L, -1, &again);
    FUZZ_CHECK(reencoded.ok() && again == json, json + " then " + again);
    lua_settop(L, top);
  }
  lua_settop(L, 0);
  return 0;
}
