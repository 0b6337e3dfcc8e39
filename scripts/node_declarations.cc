// keel.fn, keel.agent, keel.map, keel.call, keel.loop and keel.wait (see
// declarations.h): the node name, the options checked and stored, what an
// agent or a wait must have, the node declaration table.

#include <string>

#include "lua.hpp"
#include "scripts/declaration_building.h"
#include "scripts/declaration_registry.h"
#include "scripts/declaration_replay.h"
#include "scripts/declarations.h"
#include "scripts/dynamic_declarations.h"
#include "scripts/lua_json.h"
#include "scripts/lua_trampoline.h"
#include "scripts/node_options.h"

namespace keel::declaration {
namespace {

const char* KindName(lua_Integer owner) {
  switch (owner) {
    case kAgentOption:
      return "agent";
    case kMapOption:
      return "map";
    case kCallOption:
      return "call";
    case kLoopOption:
      return "loop";
    case kWaitOption:
      return "wait";
    default:
      return "fn";
  }
}

// What is wrong with the keel.wait declaration being built (its options at
// kAgent), or "".
std::string WaitProblem(lua_State* L) {
  int given = 0;
  for (const char* name : {"signal", "delay", "until"}) {
    RawField(L, kAgent, name);
    given += lua_isnil(L, -1) ? 0 : 1;
    lua_pop(L, 1);
  }
  if (given == 0) {
    return "a wait needs option 'signal' (a signal's name), 'delay' (seconds) or 'until' (a Unix "
           "time)";
  }
  if (given > 1) return "options 'signal', 'delay' and 'until' exclude each other; give one";
  RawField(L, kAgent, "timeout");
  bool timeout = !lua_isnil(L, -1);
  lua_pop(L, 1);
  if (timeout && RawString(L, kAgent, "signal").empty()) {
    return "option 'timeout' is for signal waits; a timer is due at its 'delay' or 'until'";
  }
  return "";
}

// What the agent declaration being built lacks, or "".
std::string MissingAgentOption(lua_State* L) {
  if (RawString(L, kAgent, "provider").empty()) {
    return "an agent needs option 'provider' (the name of a keel.provider)";
  }
  RawField(L, kAgent, "prompt");
  RawField(L, kAgent, "messages");
  bool has_input = !lua_isnil(L, -1) || !lua_isnil(L, -2);
  lua_pop(L, 2);
  return has_input ? "" : "an agent needs option 'prompt' (or 'messages')";
}

// Stores the table at `slot` as JSON text in the declaration's `field`.
int StoreJson(lua_State* L, int slot, const char* field, const std::string& prefix) {
  std::string json;
  Status status = LuaToJson(L, slot, &json);
  if (!status.ok()) return Raise(L, prefix + status.message());
  SetString(L, kDecl, field, json);
  return 0;
}

// keel.fn / keel.agent / keel.map / ... "name" { options }: the second
// call, or the only one of an unnamed node (`name` then ""). Upvalue 1 is
// the name, upvalue 2 the kind (kFnOption, kAgentOption, ...).
int DeclareNode(lua_State* L, unsigned owner, const char* name) {
  const char* kind = KindName(owner);
  Declaring d;
  if (BeginDeclaration(L, "node", "options", &d, name) == kLuaRaise) return kLuaRaise;
  const std::string& prefix = d.prefix;
  lua_createtable(L, 0, 0);  // kPolicy
  lua_createtable(L, 0, 0);  // kAgent
  SetString(L, kDecl, "kind", kind);
  if (StoreOptions(L, owner, prefix) == kLuaRaise) return kLuaRaise;
  if (owner == kAgentOption) {
    std::string missing = MissingAgentOption(L);
    if (!missing.empty()) return Raise(L, prefix + missing);
    if (StoreJson(L, kAgent, "agent", prefix) == kLuaRaise) return kLuaRaise;
  }
  if (owner == kWaitOption) {
    std::string problem = WaitProblem(L);
    if (!problem.empty()) return Raise(L, prefix + problem);
    if (StoreJson(L, kAgent, "wait", prefix) == kLuaRaise) return kLuaRaise;
  }
  if ((owner & kDynamicOption) != 0) {
    std::string problem = CheckDynamicDeclaration(L, kDecl, owner);
    if (!problem.empty()) return Raise(L, prefix + problem);
  }
  if (StoreJson(L, kPolicy, "policy", prefix) == kLuaRaise) return kLuaRaise;
  lua_settop(L, kDecl);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &kNodeMetaKey);
  lua_setmetatable(L, kDecl);
  return 1;
}

int NodeOptions(lua_State* L) {
  unsigned owner = static_cast<unsigned>(lua_tointeger(L, lua_upvalueindex(2)));
  // States after the first keep only the name and the function-valued options
  // (declaration_replay.h); the reader must find those under their own names.
  if (owner == kFnOption && lua_type(L, kGiven) == LUA_TTABLE && IsReplaying(L)) {
    return ReplayFnOptions(L);
  }
  return DeclareNode(L, owner, nullptr);
}

}  // namespace

// keel.fn / keel.agent "name": checks the name and returns the function
// taking the options. Upvalue 1 is the kind (kFnOption or kAgentOption).
// Given a table instead of a name, declares an unnamed node at once: the
// item of a keel.map.
int NodeName(lua_State* L) {
  lua_Integer owner = lua_tointeger(L, lua_upvalueindex(1));
  if (lua_type(L, 1) == LUA_TTABLE && (owner & (kDynamicOption | kWaitOption)) == 0) {
    lua_settop(L, 1);
    return DeclareNode(L, static_cast<unsigned>(owner), "");
  }
  if (lua_type(L, 1) != LUA_TSTRING) {
    return Raise(L, CallerWhere(L) + ": keel." + KindName(owner) +
                        " expects a node name (a string), got " + luaL_typename(L, 1));
  }
  std::string name = lua_tostring(L, 1);
  if (!IsValidName(name)) {
    return Raise(L, CallerWhere(L) + ": invalid node name '" + name +
                        "': use letters, digits, '_', '.' and '-', starting with a letter or '_'");
  }
  lua_settop(L, 1);
  lua_pushinteger(L, owner);
  lua_pushcclosure(L, &LuaTrampoline<NodeOptions>, 2);
  return 1;
}

// Explains why the item at the top of the stack is not a node declaration.
std::string NotANode(lua_State* L, lua_Integer i) {
  std::string item = "item " + std::to_string(i) + " ";
  if (lua_tocfunction(L, -1) == &LuaTrampoline<NodeOptions>) {
    lua_getupvalue(L, -1, 1);
    lua_getupvalue(L, -2, 2);
    std::string text = item + "is keel." + KindName(lua_tointeger(L, -1)) + " \"" +
                       lua_tostring(L, -2) + "\" without its { ... } of options";
    lua_pop(L, 2);
    return text;
  }
  return item + "is a " + luaL_typename(L, -1) + ", not a node (keel.fn \"name\" { ... })";
}

}  // namespace keel::declaration
