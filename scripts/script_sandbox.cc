#include "scripts/script_sandbox.h"

#include <cstdio>
#include <cstring>
#include <string_view>

#include "lua.hpp"
#include "scripts/declarations.h"
#include "scripts/log_sink.h"
#include "scripts/lua_trampoline.h"

// The replacements below that are not trampolines are written like the
// standard library functions they replace: they hold no C++ objects, so a
// Lua error may longjmp out of them anywhere, and they run under the memory
// cap like the script code that calls them.

namespace keel {
namespace {

char kOriginalLoadKey;
char kOriginalSetLocaleKey;
char kRequiredKey;  // registry: {{name, filename}, ...} of the modules found

constexpr const char* kBinaryRefused =
    "%s: binary (precompiled) chunks cannot be loaded in keel scripts; only Lua source text";

constexpr std::string_view kDebugKept[] = {"traceback", "getinfo",      "getlocal",    "getupvalue",
                                           "upvalueid", "getmetatable", "getuservalue"};

int Raise(lua_State* L, const std::string& message) {
  std::string text = CallerWhere(L) + ": " + message;
  lua_pushlstring(L, text.data(), text.size());
  return kLuaRaise;
}

int RefuseExit(lua_State* L) {
  return Raise(L, "os.exit is not available in keel scripts; use keel.fail or error()");
}

int RefuseSetHook(lua_State* L) {
  return Raise(L,
               "debug.sethook is not available in keel scripts: keel's own hook enforces timeouts "
               "and cancellation");
}

int RefuseLocaleChange(lua_State* L) {
  return Raise(L,
               "os.setlocale can only read the locale in keel scripts: the locale is shared by "
               "the whole keel process");
}

// os.setlocale(nil [, category]): the query half of the original.
int SetLocaleQuery(lua_State* L) {
  if (!lua_isnoneornil(L, 1)) return LuaTrampoline<RefuseLocaleChange>(L);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &kOriginalSetLocaleKey);
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

// Replaces Lua's "attempt to load a binary chunk" message at `index` by one
// that says why.
void ExplainBinaryRefusal(lua_State* L, int index, const char* what) {
  index = lua_absindex(L, index);
  const char* message = lua_tostring(L, index);
  if (message == nullptr || strstr(message, "attempt to load a binary chunk") == nullptr) return;
  lua_pushfstring(L, kBinaryRefused, what);
  lua_replace(L, index);
}

// True (after pushing fail and the message) when `mode` does not allow text.
bool RefusedMode(lua_State* L, const char* mode, const char* what) {
  if (mode == nullptr || strchr(mode, 't') != nullptr) return false;
  luaL_pushfail(L);
  lua_pushfstring(L, kBinaryRefused, what);
  return true;
}

// load(chunk [, chunkname [, mode [, env]]]) with mode "t".
int LoadText(lua_State* L) {
  if (!lua_isnoneornil(L, 3) && RefusedMode(L, lua_tostring(L, 3), "load")) return 2;
  if (lua_gettop(L) < 3) lua_settop(L, 3);  // an absent env stays absent
  lua_pushliteral(L, "t");
  lua_replace(L, 3);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &kOriginalLoadKey);
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  if (lua_gettop(L) == 2 && lua_isnil(L, 1)) ExplainBinaryRefusal(L, 2, "load");
  return lua_gettop(L);
}

// loadfile([filename [, mode [, env]]]) with mode "t".
int LoadfileText(lua_State* L) {
  const char* filename = luaL_optstring(L, 1, nullptr);
  const char* mode = luaL_optstring(L, 2, nullptr);
  int env = lua_isnone(L, 3) ? 0 : 3;
  const char* what = filename != nullptr ? filename : "stdin";
  if (RefusedMode(L, mode, what)) return 2;
  if (luaL_loadfilex(L, filename, "t") != LUA_OK) {
    ExplainBinaryRefusal(L, -1, what);
    luaL_pushfail(L);
    lua_insert(L, -2);
    return 2;
  }
  if (env != 0) {
    lua_pushvalue(L, env);
    if (lua_setupvalue(L, -2, 1) == nullptr) lua_pop(L, 1);
  }
  return 1;
}

int DofileContinue(lua_State* L, int, lua_KContext) { return lua_gettop(L) - 1; }

// dofile([filename]) with mode "t".
int DofileText(lua_State* L) {
  const char* filename = luaL_optstring(L, 1, nullptr);
  lua_settop(L, 1);
  if (luaL_loadfilex(L, filename, "t") != LUA_OK) {
    ExplainBinaryRefusal(L, -1, filename != nullptr ? filename : "stdin");
    return lua_error(L);
  }
  lua_callk(L, 0, LUA_MULTRET, 0, &DofileContinue);
  return DofileContinue(L, 0, 0);
}

// package.searchers[2], the Lua file searcher, with mode "t". Upvalues: the
// package table and package.searchpath.
int SearchLuaText(lua_State* L) {
  const char* name = luaL_checkstring(L, 1);
  lua_getfield(L, lua_upvalueindex(1), "path");
  if (lua_type(L, -1) != LUA_TSTRING) return luaL_error(L, "'package.path' must be a string");
  lua_pushvalue(L, lua_upvalueindex(2));
  lua_pushvalue(L, 1);
  lua_pushvalue(L, -3);
  lua_call(L, 2, 2);
  if (lua_isnil(L, -2)) return 1;  // not found: the places searched
  const char* filename = lua_tostring(L, -2);
  if (luaL_loadfilex(L, filename, "t") == LUA_OK) {
    // Noted for the run's record (RequiredModules).
    lua_rawgetp(L, LUA_REGISTRYINDEX, &kRequiredKey);
    if (lua_istable(L, -1)) {
      lua_createtable(L, 2, 0);
      lua_pushvalue(L, 1);
      lua_rawseti(L, -2, 1);
      lua_pushstring(L, filename);
      lua_rawseti(L, -2, 2);
      lua_rawseti(L, -2, static_cast<lua_Integer>(lua_rawlen(L, -2)) + 1);
    }
    lua_pop(L, 1);
    lua_pushstring(L, filename);
    return 2;
  }
  ExplainBinaryRefusal(L, -1, filename);
  return luaL_error(L, "error loading module '%s' from file '%s':\n\t%s", name, filename,
                    lua_tostring(L, -1));
}

// print(...) as Lua's, on stderr, as one write.
int PrintToStderr(lua_State* L) {
  int n = lua_gettop(L);
  luaL_Buffer line;
  luaL_buffinit(L, &line);
  for (int i = 1; i <= n; ++i) {
    if (i > 1) luaL_addchar(&line, '\t');
    luaL_tolstring(L, i, nullptr);
    luaL_addvalue(&line);
  }
  luaL_addchar(&line, '\n');
  luaL_pushresult(&line);
  size_t len = 0;
  const char* text = lua_tolstring(L, -1, &len);
  WriteLogLines(std::string_view(text, len));
  return 0;
}

// Pushes package.loaded[name].
void PushLoaded(lua_State* L, const char* name) {
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_getfield(L, -1, name);
  lua_remove(L, -2);
}

void SetFunction(lua_State* L, int table, const char* name, lua_CFunction fn) {
  lua_pushcfunction(L, fn);
  lua_setfield(L, table, name);
}

void ReplaceLoaders(lua_State* L) {
  lua_getglobal(L, "load");
  lua_rawsetp(L, LUA_REGISTRYINDEX, &kOriginalLoadKey);
  lua_pushglobaltable(L);
  int globals = lua_gettop(L);
  SetFunction(L, globals, "load", &LoadText);
  SetFunction(L, globals, "loadfile", &LoadfileText);
  SetFunction(L, globals, "dofile", &DofileText);
  lua_pop(L, 1);
  PushLoaded(L, LUA_LOADLIBNAME);
  int package = lua_gettop(L);
  lua_getfield(L, package, "searchers");
  lua_pushvalue(L, package);
  lua_getfield(L, package, "searchpath");
  lua_pushcclosure(L, &SearchLuaText, 2);
  lua_rawseti(L, -2, 2);
  lua_pop(L, 2);
}

void RestrictOs(lua_State* L) {
  PushLoaded(L, LUA_OSLIBNAME);
  int os = lua_gettop(L);
  lua_pushcfunction(L, &LuaTrampoline<RefuseExit>);
  lua_setfield(L, os, "exit");
  lua_getfield(L, os, "setlocale");
  lua_rawsetp(L, LUA_REGISTRYINDEX, &kOriginalSetLocaleKey);
  SetFunction(L, os, "setlocale", &SetLocaleQuery);
  lua_pop(L, 1);
}

void RestrictDebug(lua_State* L) {
  PushLoaded(L, LUA_DBLIBNAME);
  int debug = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, debug) != 0) {
    lua_pop(L, 1);
    std::string_view name = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "";
    bool kept = false;
    for (std::string_view keep : kDebugKept) kept = kept || keep == name;
    if (kept) continue;
    lua_pushvalue(L, -1);
    lua_pushnil(L);
    lua_rawset(L, debug);  // clearing a field while traversing is allowed
  }
  // The most likely call of all gets a message rather than "a nil value".
  lua_pushcfunction(L, &LuaTrampoline<RefuseSetHook>);
  lua_setfield(L, debug, "sethook");
  lua_pop(L, 1);
}

// print, io.write and io.stdout write to stderr.
void RedirectStdout(lua_State* L) {
  lua_pushcfunction(L, &PrintToStderr);
  lua_setglobal(L, "print");
  PushLoaded(L, LUA_IOLIBNAME);
  int io = lua_gettop(L);
  lua_getfield(L, io, "stderr");
  lua_setfield(L, io, "stdout");
  lua_getfield(L, io, "output");
  lua_getfield(L, io, "stderr");
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) lua_pop(L, 1);  // io.output(io.stderr) cannot fail
  lua_pop(L, 1);
}

// package.path = "DIR/?.lua;DIR/?/init.lua;" .. package.path
void AddScriptDirectory(lua_State* L, const std::string& script_dir) {
  // ';' and '?' are package.path syntax: such a directory cannot be listed.
  if (script_dir.empty() || script_dir.find_first_of(";?") != std::string::npos) return;
  PushLoaded(L, LUA_LOADLIBNAME);
  lua_getfield(L, -1, "path");
  const char* path = lua_tostring(L, -1);
  std::string entries = script_dir + "/?.lua;" + script_dir + "/?/init.lua;" + (path ? path : "");
  lua_pop(L, 1);
  lua_pushlstring(L, entries.data(), entries.size());
  lua_setfield(L, -2, "path");
  lua_pop(L, 1);
}

}  // namespace

void InstallScriptSandbox(lua_State* L, const std::string& script_dir) {
  lua_newtable(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &kRequiredKey);
  ReplaceLoaders(L);
  RestrictOs(L);
  RestrictDebug(L);
  RedirectStdout(L);
  AddScriptDirectory(L, script_dir);
}

std::vector<std::pair<std::string, std::string>> RequiredModules(lua_State* L) {
  std::vector<std::pair<std::string, std::string>> modules;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &kRequiredKey);
  if (lua_istable(L, -1)) {
    const lua_Integer n = static_cast<lua_Integer>(lua_rawlen(L, -1));
    for (lua_Integer i = 1; i <= n; ++i) {
      lua_rawgeti(L, -1, i);
      lua_rawgeti(L, -1, 1);
      lua_rawgeti(L, -2, 2);
      const char* name = lua_tostring(L, -2);
      const char* file = lua_tostring(L, -1);
      if (name != nullptr && file != nullptr) modules.emplace_back(name, file);
      lua_pop(L, 3);
    }
  }
  lua_pop(L, 1);
  return modules;
}

}  // namespace keel
