#include "scripts/exec_calls.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cctype>
#include <string>
#include <utility>
#include <vector>

#include "engine/did_you_mean.h"
#include "engine/utf8.h"
#include "lua.hpp"
#include "scripts/active_node.h"
#include "scripts/declaration_registry.h"
#include "scripts/declarations.h"
#include "scripts/exec_options.h"
#include "scripts/keel_module.h"
#include "scripts/lua_json.h"
#include "scripts/lua_trampoline.h"
#include "scripts/node_options.h"
#include "scripts/wait_results.h"

namespace keel {
namespace {

// Registry key of the Lua function that makes an exec node's `run`.
char kRunFactoryKey;

// Stack slots while a declaration is built.
constexpr int kGiven = 1;
constexpr int kDecl = 2;
constexpr int kPolicy = 3;
constexpr int kSpec = 4;

int Raise(lua_State* L, const std::string& message) {
  lua_pushlstring(L, message.data(), message.size());
  return kLuaRaise;
}

// As keel.fn's names: letters, digits, '_', '.' and '-', not starting with a
// digit, '.' or '-'.
bool IsValidName(std::string_view name) {
  if (name.empty() || !(isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_')) {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char c) {
    return isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
  });
}

void RawGet(lua_State* L, int t, const char* field) {
  lua_pushstring(L, field);
  lua_rawget(L, t);
}

// Pushes the value at `index`; a table (command, env, exit_codes: strings
// and numbers, checked) as a copy, so that the script changing it later
// does not change the node.
void PushCopy(lua_State* L, int index) {
  if (!lua_istable(L, index)) return lua_pushvalue(L, index);
  lua_createtable(L, static_cast<int>(lua_rawlen(L, index)), 0);
  lua_pushnil(L);
  while (lua_next(L, index) != 0) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -4);
  }
}

// What `option` could have meant, among an exec node's options.
std::string UnknownNodeOption(std::string_view option) {
  if (option == "run") return "option 'run' is for keel.fn nodes; an exec node runs its 'command'";
  std::vector<std::string_view> names = ExecFieldNames(ExecForm::kNode);
  for (std::string_view common : {"after", "when", "optional", "timeout", "total_timeout", "retry",
                                  "circuit", "fallback", "join", "memory", "max_concurrency"}) {
    names.push_back(common);
  }
  if (option == "retries") return "unknown option 'retries' (did you mean 'retry'?)";
  return "unknown option '" + std::string(option) + "'" + DidYouMean(option, names);
}

// The names in the declaration's `after` (already stored at kDecl).
std::vector<std::string> AfterNames(lua_State* L) {
  std::vector<std::string> names;
  RawGet(L, kDecl, "after");
  if (lua_istable(L, -1)) {
    for (lua_Integer i = 1; i <= static_cast<lua_Integer>(lua_rawlen(L, -1)); ++i) {
      lua_rawgeti(L, -1, i);
      if (lua_type(L, -1) == LUA_TSTRING) names.emplace_back(lua_tostring(L, -1));
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  return names;
}

// Checks and stores one common node option (key at -2, value at -1).
// Returns "" or the problem.
std::string StoreCommonOption(lua_State* L, const DslOption& option) {
  int value = lua_gettop(L);
  std::string problem = CheckOption(L, value, option);
  if (!problem.empty()) return problem;
  PushOption(L, value, option);
  lua_pushvalue(L, value - 1);
  lua_insert(L, -2);
  lua_rawset(L, option.store == OptionStore::kPolicy ? kPolicy : kDecl);
  return "";
}

// Builds the declaration of an exec node called `name` ("" for an unnamed
// one) from the options table at kGiven; leaves it at kDecl. Returns 0 or
// kLuaRaise with the message pushed.
int BuildDeclaration(lua_State* L, const std::string& name) {
  const std::string where = CallerWhere(L);
  const std::string prefix =
      where + ": " + (name.empty() ? std::string("keel.exec: ") : "node '" + name + "': ");
  if (lua_type(L, kGiven) != LUA_TTABLE) {
    return Raise(L, prefix + "expects a table of options, got " + luaL_typename(L, kGiven));
  }
  lua_settop(L, kGiven);
  lua_createtable(L, 0, 8);  // kDecl
  lua_createtable(L, 0, 4);  // kPolicy
  lua_createtable(L, 0, 8);  // kSpec
  lua_pushlstring(L, name.data(), name.size());
  lua_setfield(L, kDecl, "name");
  lua_pushlstring(L, where.data(), where.size());
  lua_setfield(L, kDecl, "where");
  lua_pushliteral(L, "exec");
  lua_setfield(L, kDecl, "kind");
  // `after` first: the templates are checked against it.
  RawGet(L, kGiven, "after");
  if (!lua_isnil(L, -1)) {
    lua_pushliteral(L, "after");
    lua_insert(L, -2);
    std::string problem = StoreCommonOption(L, *FindOption(kFnOption, "after"));
    if (!problem.empty()) return Raise(L, prefix + problem);
  }
  lua_settop(L, kSpec);
  const std::vector<std::string> after = AfterNames(L);
  int key = kSpec + 1;
  lua_pushnil(L);
  while (lua_next(L, kGiven) != 0) {
    if (lua_type(L, key) != LUA_TSTRING) {
      return Raise(
          L, prefix + "options are name = value pairs; found a " + luaL_typename(L, key) + " key");
    }
    std::string option = lua_tostring(L, key);
    std::string problem;
    if (option == "after") {
      // stored above
    } else if (IsExecField(ExecForm::kNode, option)) {
      problem = CheckExecField(L, key + 1, option, ExecForm::kNode, after);
      if (problem.empty()) {
        lua_pushvalue(L, key);
        PushCopy(L, key + 1);
        lua_rawset(L, kSpec);
      }
    } else if (const DslOption* common = FindOption(kFnOption, option);
               common != nullptr && option != "run") {
      problem = StoreCommonOption(L, *common);
    } else {
      problem = UnknownNodeOption(option);
    }
    if (!problem.empty()) return Raise(L, prefix + problem);
    lua_settop(L, key);
  }
  RawGet(L, kSpec, "command");
  bool has_command = !lua_isnil(L, -1);
  lua_pop(L, 1);
  if (!has_command) {
    return Raise(L, prefix +
                        "an exec node needs option 'command' (a list: the program, then its "
                        "arguments)");
  }
  std::string policy;
  if (Status s = LuaToJson(L, kPolicy, &policy); !s.ok()) return Raise(L, prefix + s.message());
  lua_pushlstring(L, policy.data(), policy.size());
  lua_setfield(L, kDecl, "policy");
  // run = factory(spec, stdin)
  lua_rawgetp(L, LUA_REGISTRYINDEX, &kRunFactoryKey);
  lua_pushvalue(L, kSpec);
  RawGet(L, kSpec, "stdin");
  if (lua_pcall(L, 2, 1, 0) != LUA_OK) return kLuaRaise;  // out of memory: the message is pushed
  lua_setfield(L, kDecl, "run");
  lua_settop(L, kDecl);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &declaration::kNodeMetaKey);
  lua_setmetatable(L, kDecl);
  return 0;
}

// keel.exec "name" { options }: the second call. Upvalue 1 is the name.
int NamedOptions(lua_State* L) {
  std::string name = lua_tostring(L, lua_upvalueindex(1));
  if (BuildDeclaration(L, name) == kLuaRaise) return kLuaRaise;
  return 1;
}

int ReturnFailure(lua_State* L, const Status& status) {
  lua_pushboolean(L, 0);
  PushFailure(L, status);
  return 2;
}

// {"code": N, "stdout": "...", "stderr": "..."}: what a call without
// `output` returns.
std::string RawResultJson(const ProcessResult& result) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("code");
  w.Int(result.exit_code);
  for (auto [key, text] :
       {std::pair{"stdout", &result.stdout_data}, std::pair{"stderr", &result.stderr_data}}) {
    std::string valid = ReplaceInvalidUtf8(*text);
    w.Key(key);
    w.String(valid.data(), static_cast<rapidjson::SizeType>(valid.size()));
  }
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

// Starts `call` on the node's process loop once the coroutine has yielded.
void Wait(ActiveNode* active, ExecCall call) {
  ProcessLoop* loop = active->processes;
  active->wait = [loop, call = std::move(call)](std::function<void(WaitResult)> finish) mutable {
    ProcessRequest request = std::move(call.request);
    loop->Start(std::move(request), [call = std::move(call), finish](ProcessResult result) {
      bool raw = !call.has_output;
      // A call without `output` hands back any exit code it does not map.
      bool returned_as_is = raw && result.status.ok() && result.signal == 0 &&
                            call.exit_codes.count(result.exit_code) == 0;
      if (!returned_as_is) {
        Status status = ExecStatus(result, call.exit_codes, call.what);
        if (!status.ok()) return finish(ResumeWithFailure(std::move(status)));
      }
      if (raw)
        return finish(ResumeWithJson(RawResultJson(result), ErrorKind::kPermanent, "keel.exec"));
      auto output = ExecOutputJson(call.output, result.stdout_data, call.what);
      if (!output.ok()) return finish(ResumeWithFailure(output.status()));
      finish(ResumeWithJson(std::move(output).value(), ErrorKind::kPermanent, "keel.exec"));
    });
  };
}

// The running node a call may wait in, or null with *error set.
ActiveNode* RunningNode(lua_State* L, std::string* error) {
  ActiveNode* active = ActiveNodeOf(L);
  if (active == nullptr || active->context == nullptr) {
    *error = "keel.exec { ... } runs a program only inside a node's function";
  } else if (L != active->coroutine) {
    *error = "keel.exec cannot be used inside a coroutine the script created";
  } else if (!lua_isyieldable(L)) {
    *error = "keel.exec cannot be used inside a metamethod or a function called from C";
  } else if (active->processes == nullptr) {
    *error = "keel.exec: no process loop in this process";
  }
  return error->empty() ? active : nullptr;
}

// The `run` of a declared exec node: (spec, has_stdin, stdin value).
int NodeRun(lua_State* L) {
  std::string error;
  ActiveNode* active = RunningNode(L, &error);
  if (active == nullptr) return Raise(L, error);
  ExecCall call;
  Status read = ReadExecCall(L, 1, ExecForm::kNode, *active->context, active->clock->Now(), &call);
  if (!read.ok()) return ReturnFailure(L, read);
  call.has_output = true;  // a node's output is stdout, as text unless it says otherwise
  if (lua_toboolean(L, 2)) {
    call.request.has_stdin = true;
    if (lua_isnone(L, 3)) {
      call.request.stdin_data = "null";
    } else if (Status s = LuaToJson(L, 3, &call.request.stdin_data); !s.ok()) {
      return ReturnFailure(
          L, Status::Error(ErrorKind::kPermanent, "option 'stdin': its result " + s.message()));
    }
  }
  Wait(active, std::move(call));
  return kLuaYield;
}

// keel.exec { ... } inside a running node.
int Call(lua_State* L) {
  std::string error;
  ActiveNode* active = RunningNode(L, &error);
  if (active == nullptr) return Raise(L, CallerWhere(L) + ": " + error);
  lua_settop(L, 1);
  const std::string prefix = CallerWhere(L) + ": keel.exec: ";
  lua_pushnil(L);
  while (lua_next(L, 1) != 0) {
    std::string problem;
    if (lua_type(L, 2) != LUA_TSTRING) {
      problem =
          std::string("fields are name = value pairs; found a ") + luaL_typename(L, 2) + " key";
    } else if (!IsExecField(ExecForm::kCall, lua_tostring(L, 2))) {
      std::string field = lua_tostring(L, 2);
      problem =
          "unknown field '" + field + "'" + DidYouMean(field, ExecFieldNames(ExecForm::kCall));
    } else {
      problem = CheckExecField(L, 3, lua_tostring(L, 2), ExecForm::kCall, {});
    }
    if (!problem.empty()) return Raise(L, prefix + problem);
    lua_settop(L, 2);
  }
  RawGet(L, 1, "command");
  if (lua_isnil(L, -1)) return Raise(L, prefix + "field 'command' is required");
  lua_settop(L, 1);
  ExecCall call;
  Status read = ReadExecCall(L, 1, ExecForm::kCall, *active->context, active->clock->Now(), &call);
  if (!read.ok()) return ReturnFailure(L, read);
  RawGet(L, 1, "stdin");
  if (!lua_isnil(L, -1)) {
    call.request.has_stdin = true;
    if (Status s = LuaToJson(L, -1, &call.request.stdin_data); !s.ok()) {
      return Raise(L, prefix + "field 'stdin': " + s.message());
    }
  }
  lua_settop(L, 1);
  Wait(active, std::move(call));
  return kLuaYield;
}

// keel.exec's raw entry (wrapped so a failure is raised): a name, a
// declaration while loading, or a call inside a running node. Returns
// (true, value) or yields.
int Entry(lua_State* L) {
  if (lua_type(L, 1) == LUA_TSTRING) {
    std::string name = lua_tostring(L, 1);
    if (!IsValidName(name)) {
      return Raise(L,
                   CallerWhere(L) + ": invalid node name '" + name +
                       "': use letters, digits, '_', '.' and '-', starting with a letter or '_'");
    }
    lua_settop(L, 1);
    lua_pushboolean(L, 1);
    lua_insert(L, 1);
    lua_pushcclosure(L, &LuaTrampoline<NamedOptions>, 1);
    return 2;
  }
  if (lua_type(L, 1) != LUA_TTABLE) {
    return Raise(L, CallerWhere(L) + ": keel.exec expects a node name or a table of options, got " +
                        luaL_typename(L, 1));
  }
  ActiveNode* active = ActiveNodeOf(L);
  if (active != nullptr && active->context != nullptr) return Call(L);
  lua_settop(L, 1);
  if (BuildDeclaration(L, "") == kLuaRaise) return kLuaRaise;
  lua_pushboolean(L, 1);
  lua_insert(L, -2);
  return 2;
}

// Wraps a raw function returning (ok, value) so that a failure is raised.
constexpr const char* kRaiseOnFailure =
    "local raw = ...\n"
    "return function(...)\n"
    "  local ok, value = raw(...)\n"
    "  if ok then return value end\n"
    "  error(value, 0)\n"
    "end\n";

// Makes an exec node's `run` from its spec and stdin function.
constexpr const char* kRunFactory =
    "local raw = ...\n"
    "return function(spec, stdin)\n"
    "  if stdin then\n"
    "    return function(ctx)\n"
    "      local ok, value = raw(spec, true, stdin(ctx))\n"
    "      if ok then return value end\n"
    "      error(value, 0)\n"
    "    end\n"
    "  end\n"
    "  return function(ctx)\n"
    "    local ok, value = raw(spec, false)\n"
    "    if ok then return value end\n"
    "    error(value, 0)\n"
    "  end\n"
    "end\n";

// Pushes what chunk `code` returns when called with `raw`; nothing on failure.
bool PushMade(lua_State* L, const char* code, lua_CFunction raw) {
  if (luaL_loadbuffer(L, code, std::char_traits<char>::length(code), "=keel.exec") != LUA_OK) {
    lua_pop(L, 1);
    return false;
  }
  lua_pushcfunction(L, raw);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    lua_pop(L, 1);
    return false;
  }
  return true;
}

}  // namespace

void AddExec(lua_State* L) {
  if (PushMade(L, kRunFactory, &LuaTrampoline<NodeRun>)) {
    lua_rawsetp(L, LUA_REGISTRYINDEX, &kRunFactoryKey);
  }
  if (PushMade(L, kRaiseOnFailure, &LuaTrampoline<Entry>)) lua_setfield(L, -2, "exec");
}

}  // namespace keel
