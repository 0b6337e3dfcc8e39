// The wrapper of luaL_loadbufferx the loader targets link with; see
// fuzz/script_bound.h.

#include "fuzz/fuzz_check.h"
#include "fuzz/script_bound.h"
#include "lua.hpp"

extern "C" int __real_luaL_loadbufferx(lua_State* L, const char* buff, size_t size,
                                       const char* name, const char* mode);

namespace {

char kBoundKey;
long instructions_left = 0;

constexpr int kHookEvery = 1000;

void CountHook(lua_State* L, lua_Debug*) {
  instructions_left -= kHookEvery;
  if (instructions_left < 0) luaL_error(L, "fuzz: the script ran out of instructions");
}

// Runs after the standard libraries and keel's sandbox are installed.
constexpr char kStrip[] = R"(
local function refused(name)
  return function() error(name .. " is not available to fuzz-made scripts", 2) end
end
for _, n in ipairs { "execute", "remove", "rename", "tmpname", "exit" } do
  os[n] = refused("os." .. n)
end
for _, n in ipairs { "open", "popen", "lines", "input", "output", "read", "close", "tmpfile",
                     "write" } do
  io[n] = refused("io." .. n)
end
io.stdin, io.stdout, io.stderr = nil, nil, nil
print = function() end
dofile, loadfile = refused("dofile"), refused("loadfile")
package.loadlib = refused("package.loadlib")
package.path, package.cpath = "", ""
package.searchers = { package.searchers[1] }
)";

void Bound(lua_State* L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &kBoundKey) != LUA_TNIL) {
    lua_pop(L, 1);
    return;
  }
  lua_pop(L, 1);
  lua_pushboolean(L, 1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &kBoundKey);
  int status = __real_luaL_loadbufferx(L, kStrip, sizeof(kStrip) - 1, "=fuzz", "t");
  if (status == LUA_OK) status = lua_pcall(L, 0, 0, 0);
  FUZZ_CHECK(status == LUA_OK, lua_tostring(L, -1));
  instructions_left = keel::fuzz::kScriptInstructions;
  lua_sethook(L, &CountHook, LUA_MASKCOUNT, kHookEvery);
}

}  // namespace

extern "C" int __wrap_luaL_loadbufferx(lua_State* L, const char* buff, size_t size,
                                       const char* name, const char* mode) {
  Bound(L);
  return __real_luaL_loadbufferx(L, buff, size, name, mode);
}
