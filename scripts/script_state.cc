#include "scripts/script_state.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "lua.hpp"
#include "scripts/context_table.h"
#include "scripts/declaration_replay.h"
#include "scripts/declarations.h"
#include "scripts/keel_module.h"
#include "scripts/lua_trampoline.h"
#include "scripts/script_sandbox.h"

namespace keel {
namespace {

// Every call into Lua from C++ is protected; reaching this is a bug.
int Panic(lua_State* L) {
  const char* message = lua_tostring(L, -1);
  fprintf(stderr, "keel: unprotected Lua error: %s\n", message != nullptr ? message : "?");
  abort();
}

// True when `text` starts with a location, "file.lua:12:".
bool HasLocation(std::string_view text) {
  size_t colon = text.find(':');
  if (colon == 0 || colon == std::string_view::npos ||
      text.substr(0, colon).find('\n') != std::string_view::npos) {
    return false;
  }
  size_t digits = colon + 1;
  while (digits < text.size() && isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
  return digits > colon + 1 && digits < text.size() && text[digits] == ':';
}

// The text of the error value at `index`, whatever its type.
std::string ErrorText(lua_State* L, int index) {
  Status failure = ReadFailure(L, index);
  if (!failure.ok()) return failure.message();
  if (lua_type(L, index) == LUA_TSTRING || lua_type(L, index) == LUA_TNUMBER) {
    lua_pushvalue(L, index);  // lua_tostring converts numbers in place: use a copy
    std::string text = lua_tostring(L, -1);
    lua_pop(L, 1);
    return text;
  }
  return std::string("(error object is a ") + luaL_typename(L, index) + " value)";
}

// Message handler of the script's top-level run: makes the error value a
// string that starts with where it was raised. Upvalue 1: the chunk name.
int LocateError(lua_State* L) {
  std::string text = ErrorText(L, 1);
  if (!HasLocation(text)) {
    std::string where = CallerWhere(L);
    text = (where != "?" ? where : lua_tostring(L, lua_upvalueindex(1))) + ": " + text;
  }
  lua_pushlstring(L, text.data(), text.size());
  return 1;
}

// The script as the lua interpreter reads it: without a UTF-8 byte order
// mark, and with a first line starting with '#' (a shebang) left empty.
std::string_view ChunkText(std::string_view text) {
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
  if (text.starts_with('#')) text.remove_prefix(std::min(text.find('\n'), text.size()));
  return text;
}

}  // namespace

Result<std::unique_ptr<ScriptState>> ScriptState::Create(const ScriptSource& source,
                                                         size_t memory_limit,
                                                         ScriptDeclarations* declarations,
                                                         const std::string* replay,
                                                         std::string* dump) {
  std::unique_ptr<ScriptState> state(new ScriptState(memory_limit));
  lua_State* L = lua_newstate(&LuaMemory::Alloc, &state->memory_);
  if (L == nullptr) return Status::Error(ErrorKind::kPermanent, "cannot create a Lua state");
  state->L_ = L;
  lua_atpanic(L, &Panic);
  luaL_openlibs(L);
  InstallScriptSandbox(L, source.directory);
  InstallKeelModule(L, &state->anchor_);
  InstallContextTable(L);
  lua_pushlstring(L, source.chunk_name.data(), source.chunk_name.size());
  lua_pushcclosure(L, &LuaTrampoline<LocateError>, 1);
  std::string chunk = "@" + source.chunk_name;
  int status;
  if (replay != nullptr && !replay->empty()) {
    // Made by DumpChunk from the same text in this process: trusted.
    status = luaL_loadbufferx(L, replay->data(), replay->size(), chunk.c_str(), "b");
  } else {
    std::string_view text = ChunkText(source.text);
    status = luaL_loadbufferx(L, text.data(), text.size(), chunk.c_str(), "t");
    if (status == LUA_OK && dump != nullptr) *dump = DumpChunk(L);
  }
  if (status == LUA_OK) {
    if (replay != nullptr) SetReplaying(L, true);
    CappedScope capped(&state->memory_, true);
    status = lua_pcall(L, 0, 1, 1);
  }
  if (replay != nullptr) SetReplaying(L, false);
  if (status == LUA_ERRMEM) {
    return Status::Error(ErrorKind::kPermanent, source.chunk_name + ": memory limit of " +
                                                    FormatMiB(memory_limit) +
                                                    " exceeded while running the script");
  }
  if (status != LUA_OK) {
    // Parse errors (and errors the handler could not treat) come here as they are.
    std::string message = ErrorText(L, -1);
    if (!HasLocation(message)) message = source.chunk_name + ": " + message;
    return Status::Error(ErrorKind::kPermanent, message);
  }
  lua_remove(L, 1);  // the message handler
  declarations->required = RequiredModules(L);
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
