#include "scripts/keel_module.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iterator>
#include <string_view>

#include "engine/did_you_mean.h"
#include "scripts/active_node.h"
#include "scripts/declarations.h"
#include "scripts/exec_calls.h"
#include "scripts/llm_calls.h"
#include "scripts/log_sink.h"
#include "scripts/lua_json.h"
#include "scripts/lua_trampoline.h"
#include "scripts/option_values.h"

namespace keel {
namespace {

char kFailMetaKey;

constexpr std::string_view kFailKinds[] = {"timeout",      "transient", "rate_limited", "permanent",
                                           "circuit_open", "cancelled", "error"};
constexpr std::string_view kFailFields[] = {"kind", "message", "retry_after"};

int Raise(lua_State* L, const std::string& message) {
  std::string where = CallerWhere(L);
  std::string text = where + ": " + message;
  lua_pushlstring(L, text.data(), text.size());
  return kLuaRaise;
}

// Pushes t[field] without running metamethods.
void RawField(lua_State* L, int table, const char* field) {
  lua_pushstring(L, field);
  lua_rawget(L, table);
}

int JsonEncode(lua_State* L) {
  std::string json;
  Status status = LuaToJson(L, 1, &json);
  if (!status.ok()) return Raise(L, "keel.json.encode: " + status.message());
  lua_pushlstring(L, json.data(), json.size());
  return 1;
}

int JsonDecode(lua_State* L) {
  if (lua_type(L, 1) != LUA_TSTRING) {
    return Raise(L, std::string("keel.json.decode expects a string, got ") + luaL_typename(L, 1));
  }
  size_t len = 0;
  const char* text = lua_tolstring(L, 1, &len);
  Status status = PushJson(L, std::string_view(text, len));
  if (!status.ok()) return Raise(L, "keel.json.decode: " + status.message());
  return 1;
}

// keel.array{...} and keel.object{...}: mark a table (a new one when called
// without arguments) and return it.
int Mark(lua_State* L, bool array) {
  if (lua_isnoneornil(L, 1)) {
    lua_settop(L, 0);
    lua_createtable(L, 0, 0);
  } else if (lua_type(L, 1) != LUA_TTABLE) {
    return Raise(L, std::string(array ? "keel.array" : "keel.object") + " expects a table, got " +
                        luaL_typename(L, 1));
  }
  lua_settop(L, 1);
  if (array) {
    PushArrayMarker(L);
  } else {
    PushObjectMarker(L);
  }
  lua_setmetatable(L, 1);
  return 1;
}
int MarkArray(lua_State* L) { return Mark(L, true); }
int MarkObject(lua_State* L) { return Mark(L, false); }

// keel.log(...): one line on stderr, "[node] a b c". Tables print as JSON.
int Log(lua_State* L) {
  ActiveNode* active = ActiveNodeOf(L);
  std::string line = "[" + (active != nullptr ? *active->node : std::string("keel")) + "]";
  int n = lua_gettop(L);
  for (int i = 1; i <= n; ++i) {
    line += ' ';
    int type = lua_type(L, i);
    if (type == LUA_TSTRING || type == LUA_TNUMBER) {
      lua_pushvalue(L, i);  // lua_tolstring converts numbers in place: use a copy
      size_t len = 0;
      const char* s = lua_tolstring(L, -1, &len);
      line.append(s, len);
      lua_pop(L, 1);
    } else if (type == LUA_TBOOLEAN) {
      line += lua_toboolean(L, i) ? "true" : "false";
    } else if (type == LUA_TNIL || IsJsonNull(L, i)) {
      line += type == LUA_TNIL ? "nil" : "null";
    } else if (type != LUA_TTABLE || !LuaToJson(L, i, &line).ok()) {
      char address[32];
      snprintf(address, sizeof(address), ": %p", lua_topointer(L, i));
      line += std::string(luaL_typename(L, i)) + address;
    }
  }
  line += '\n';
  WriteLogLines(line);
  return 0;
}

// keel.sleep(seconds): records the wait and yields the node's coroutine.
int Sleep(lua_State* L) {
  ActiveNode* active = ActiveNodeOf(L);
  if (active == nullptr) {
    return Raise(L, "keel.sleep can only be used inside a node's run or when function");
  }
  if (L != active->coroutine) {
    return Raise(L, "keel.sleep cannot be used inside a coroutine the script created");
  }
  if (!lua_isyieldable(L)) {
    return Raise(L, "keel.sleep cannot be used inside a metamethod or a function called from C");
  }
  double seconds = lua_tonumber(L, 1);
  if (lua_type(L, 1) != LUA_TNUMBER || !(seconds >= 0) || std::isinf(seconds)) {
    return Raise(L, "keel.sleep expects a finite number of seconds, 0 or more, got " +
                        option_values::Describe(L, 1));
  }
  active->sleep_seconds = seconds;
  return kLuaYield;
}

// Empty when the table at 1 holds only fields keel.fail knows; otherwise
// the first unknown one, such as "unknown field 'mesage' (did you mean
// 'message'?)".
std::string UnknownFailField(lua_State* L) {
  lua_pushnil(L);
  while (lua_next(L, 1) != 0) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING) {
      std::string problem = std::string("unexpected ") + luaL_typename(L, -1) +
                            " key (the fields are kind, message and retry_after)";
      lua_pop(L, 1);
      return problem;
    }
    std::string_view key = lua_tostring(L, -1);
    if (std::find(std::begin(kFailFields), std::end(kFailFields), key) == std::end(kFailFields)) {
      std::string problem =
          "unknown field '" + std::string(key) + "'" + DidYouMean(key, kFailFields);
      lua_pop(L, 1);
      return problem;
    }
  }
  return "";
}

// keel.fail{ kind = ..., message = ..., retry_after = ... } or keel.fail(message).
int Fail(lua_State* L) {
  std::string kind = "error";
  std::string message;
  double retry_after = -1;
  if (lua_type(L, 1) == LUA_TSTRING) {
    message = lua_tostring(L, 1);
  } else if (lua_type(L, 1) == LUA_TTABLE) {
    lua_settop(L, 1);
    if (std::string unknown = UnknownFailField(L); !unknown.empty()) {
      return Raise(L, "keel.fail: " + unknown);
    }
    RawField(L, 1, "kind");
    RawField(L, 1, "message");
    RawField(L, 1, "retry_after");  // kind at 2, message at 3, retry_after at 4
    ErrorKind parsed;
    if (!lua_isnil(L, 2)) {
      if (lua_type(L, 2) != LUA_TSTRING) {
        return Raise(L,
                     std::string("keel.fail: kind must be a string, got ") + luaL_typename(L, 2));
      }
      kind = lua_tostring(L, 2);
      if (!ParseErrorKind(kind, &parsed) || parsed == ErrorKind::kNone) {
        return Raise(L, "keel.fail: unknown kind '" + kind + "'" + DidYouMean(kind, kFailKinds));
      }
    }
    if (lua_type(L, 3) == LUA_TSTRING || lua_type(L, 3) == LUA_TNUMBER) {
      message = lua_tostring(L, 3);
    } else if (!lua_isnil(L, 3)) {
      return Raise(L,
                   std::string("keel.fail: message must be a string, got ") + luaL_typename(L, 3));
    }
    if (!lua_isnil(L, 4)) {
      retry_after = lua_tonumber(L, 4);
      if (!option_values::IsSecondsOrZero(L, 4)) {
        return Raise(L, "keel.fail: retry_after must be a number of seconds from 0 to 1e9, got " +
                            option_values::Describe(L, 4));
      }
    }
  } else {
    return Raise(L, std::string("keel.fail expects { kind = ..., message = ... } or a message, "
                                "got ") +
                        luaL_typename(L, 1));
  }
  if (message.empty()) message = kind;
  lua_createtable(L, 0, 3);
  lua_pushstring(L, kind.c_str());
  lua_setfield(L, -2, "kind");
  lua_pushlstring(L, message.data(), message.size());
  lua_setfield(L, -2, "message");
  if (retry_after >= 0) {
    lua_pushnumber(L, retry_after);
    lua_setfield(L, -2, "retry_after");
  }
  lua_rawgetp(L, LUA_REGISTRYINDEX, &kFailMetaKey);
  lua_setmetatable(L, -2);
  return kLuaRaise;
}

// __tostring of keel.fail errors: "transient: upstream said 503".
int FailToString(lua_State* L) {
  RawField(L, 1, "kind");
  RawField(L, 1, "message");
  const char* kind = lua_tostring(L, -2);
  const char* message = lua_tostring(L, -1);
  std::string text =
      std::string(kind != nullptr ? kind : "error") + ": " + (message != nullptr ? message : "");
  lua_pushlstring(L, text.data(), text.size());
  return 1;
}

int OpenKeel(lua_State* L) {
  lua_createtable(L, 0, 12);
  AddDeclarationFunctions(L);
  AddScheduleFunction(L);
  PushJsonNull(L);
  lua_setfield(L, -2, "null");
  lua_pushcfunction(L, &LuaTrampoline<MarkArray>);
  lua_setfield(L, -2, "array");
  lua_pushcfunction(L, &LuaTrampoline<MarkObject>);
  lua_setfield(L, -2, "object");
  lua_createtable(L, 0, 2);
  lua_pushcfunction(L, &LuaTrampoline<JsonEncode>);
  lua_setfield(L, -2, "encode");
  lua_pushcfunction(L, &LuaTrampoline<JsonDecode>);
  lua_setfield(L, -2, "decode");
  lua_setfield(L, -2, "json");
  lua_pushcfunction(L, &LuaTrampoline<Log>);
  lua_setfield(L, -2, "log");
  lua_pushcfunction(L, &LuaTrampoline<Sleep>);
  lua_setfield(L, -2, "sleep");
  lua_pushcfunction(L, &LuaTrampoline<Fail>);
  lua_setfield(L, -2, "fail");
  AddWaitingCalls(L);
  AddExec(L);
  return 1;
}

}  // namespace

void InstallKeelModule(lua_State* L, StateAnchor* anchor) {
  SetStateAnchor(L, anchor);
  InstallJsonMarkers(L);
  InstallDeclarations(L);
  InstallSchedules(L);
  lua_createtable(L, 0, 2);
  lua_pushcfunction(L, &LuaTrampoline<FailToString>);
  lua_setfield(L, -2, "__tostring");
  lua_pushliteral(L, "keel.failure");
  lua_setfield(L, -2, "__name");
  lua_rawsetp(L, LUA_REGISTRYINDEX, &kFailMetaKey);
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "preload");
  lua_pushcfunction(L, &LuaTrampoline<OpenKeel>);
  lua_setfield(L, -2, "keel");
  lua_pop(L, 2);
}

void PushFailure(lua_State* L, const Status& status) {
  lua_createtable(L, 0, 3);
  std::string_view kind = ErrorKindName(status.kind());
  lua_pushlstring(L, kind.data(), kind.size());
  lua_setfield(L, -2, "kind");
  lua_pushlstring(L, status.message().data(), status.message().size());
  lua_setfield(L, -2, "message");
  if (status.retry_after() >= 0) {
    lua_pushnumber(L, status.retry_after());
    lua_setfield(L, -2, "retry_after");
  }
  lua_rawgetp(L, LUA_REGISTRYINDEX, &kFailMetaKey);
  lua_setmetatable(L, -2);
}

Status ReadFailure(lua_State* L, int index) {
  index = lua_absindex(L, index);
  if (!lua_getmetatable(L, index)) return Status::Ok();
  lua_rawgetp(L, LUA_REGISTRYINDEX, &kFailMetaKey);
  bool is_failure = lua_rawequal(L, -1, -2) != 0;
  lua_pop(L, 2);
  if (!is_failure) return Status::Ok();
  RawField(L, index, "kind");
  RawField(L, index, "message");
  RawField(L, index, "retry_after");
  ErrorKind kind = ErrorKind::kError;
  if (lua_type(L, -3) != LUA_TSTRING || !ParseErrorKind(lua_tostring(L, -3), &kind) ||
      kind == ErrorKind::kNone) {
    kind = ErrorKind::kError;
  }
  std::string message = lua_type(L, -2) == LUA_TSTRING ? std::string(lua_tostring(L, -2))
                                                       : std::string(ErrorKindName(kind));
  double retry_after = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : -1;
  lua_pop(L, 3);
  return Status::Error(kind, std::move(message), retry_after);
}

}  // namespace keel
