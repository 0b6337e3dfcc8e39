#pragma once
// LuaTrampoline: the one shape of every C function keel registers in Lua.
//
// Debian's Lua is built as C, so lua_error and lua_yield longjmp over C++
// frames without running destructors. A trampoline runs a C++ helper with the
// memory cap disarmed (so its Lua API calls cannot fail), lets every C++
// object of the helper die, and only then raises or yields. Helpers must use
// only Lua API calls that cannot raise when allocations succeed: raw table
// access, lua_to*, lua_push*, lua_next over a table they own, never luaL_check*
// or anything that runs metamethods.

#include <exception>

#include "lua.hpp"
#include "scripts/lua_alloc.h"

namespace keel {

// Helper results other than a count of pushed results.
inline constexpr int kLuaRaise = -1;  // the helper pushed an error value
inline constexpr int kLuaYield = -2;  // the trampoline yields the running coroutine

// Calls Helper with the memory cap disarmed, turning a C++ exception into a
// Lua error. A helper that returns kLuaYield yields the running coroutine;
// with `Continue`, the coroutine goes on in it when resumed (lua_yieldk).
template <int (*Helper)(lua_State*), lua_KFunction Continue = nullptr>
int LuaTrampoline(lua_State* L) {
  int n;
  {
    CappedScope uncapped(LuaMemory::Of(L), false);
    try {
      n = Helper(L);
    } catch (const std::exception& e) {
      lua_pushstring(L, e.what());
      n = kLuaRaise;
    }
  }
  if (n == kLuaRaise) return lua_error(L);
  if (n == kLuaYield) return lua_yieldk(L, 0, 0, Continue);
  return n;
}

}  // namespace keel
