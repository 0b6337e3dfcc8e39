#include "scripts/script_state.h"

#include <cstdio>
#include <cstdlib>

#include "lua.hpp"
#include "scripts/context_table.h"
#include "scripts/keel_module.h"

namespace keel {
namespace {

// Every call into Lua from C++ is protected; reaching this is a bug.
int Panic(lua_State* L) {
  const char* message = lua_tostring(L, -1);
  fprintf(stderr, "keel: unprotected Lua error: %s\n", message != nullptr ? message : "?");
  abort();
}

// The text of the error value on top of L's stack.
std::string ErrorText(lua_State* L) {
  Status failure = ReadFailure(L, -1);
  if (!failure.ok()) return failure.message();
  if (const char* message = lua_tostring(L, -1)) return message;
  return std::string("(error object is a ") + luaL_typename(L, -1) + " value)";
}

}  // namespace

Result<std::unique_ptr<ScriptState>> ScriptState::Create(const ScriptSource& source,
                                                         size_t memory_limit,
                                                         ScriptDeclarations* declarations) {
  std::unique_ptr<ScriptState> state(new ScriptState(memory_limit));
  lua_State* L = lua_newstate(&LuaMemory::Alloc, &state->memory_);
  if (L == nullptr) return Status::Error(ErrorKind::kPermanent, "cannot create a Lua state");
  state->L_ = L;
  lua_atpanic(L, &Panic);
  luaL_openlibs(L);
  InstallKeelModule(L, &state->anchor_);
  InstallContextTable(L);
  std::string chunk = "@" + source.chunk_name;
  int status = luaL_loadbufferx(L, source.text.data(), source.text.size(), chunk.c_str(), "t");
  if (status == LUA_OK) {
    CappedScope capped(&state->memory_, true);
    status = lua_pcall(L, 0, 1, 0);
  }
  if (status == LUA_ERRMEM) {
    return Status::Error(ErrorKind::kPermanent, source.chunk_name + ": memory limit of " +
                                                    FormatMiB(memory_limit) +
                                                    " exceeded while running the script");
  }
  if (status != LUA_OK) return Status::Error(ErrorKind::kPermanent, ErrorText(L));
  Status read =
      ReadDeclarations(L, lua_gettop(L), source.chunk_name, declarations, &state->functions_);
  if (!read.ok()) return read;
  lua_settop(L, 0);
  return state;
}

ScriptState::~ScriptState() {
  if (L_ != nullptr) lua_close(L_);
}

lua_State* ScriptState::TakeCoroutine() {
  if (coroutine_ready_) {
    coroutine_ready_ = false;
    return coroutine_;
  }
  coroutine_ = lua_newthread(L_);
  coroutine_ref_ = luaL_ref(L_, LUA_REGISTRYINDEX);
  InstallStopHook(coroutine_);
  return coroutine_;
}

void ScriptState::ReleaseCoroutine(bool clean) {
  if (clean) {
    lua_settop(coroutine_, 0);
    coroutine_ready_ = true;
    return;
  }
  luaL_unref(L_, LUA_REGISTRYINDEX, coroutine_ref_);
  coroutine_ = nullptr;
  coroutine_ref_ = LUA_NOREF;
}

}  // namespace keel
