#include "scripts/declarations.h"

#include <algorithm>
#include <cmath>
#include <string_view>
#include <utility>

#include "engine/did_you_mean.h"
#include "lua.hpp"
#include "scripts/active_node.h"
#include "scripts/lua_json.h"
#include "scripts/lua_trampoline.h"
#include "scripts/node_options.h"

namespace keel {

static_assert(kNoFunction == LUA_NOREF);

namespace {

// Registry keys.
char kNodeMetaKey;
char kWorkflowMetaKey;
char kWorkflowListKey;

constexpr std::string_view kWorkflowOptionNames[] = {"params", "defaults"};

int Raise(lua_State* L, const std::string& message) {
  lua_pushlstring(L, message.data(), message.size());
  return kLuaRaise;
}

bool HasMeta(lua_State* L, int index, const void* key) {
  if (!lua_getmetatable(L, index)) return false;
  lua_rawgetp(L, LUA_REGISTRYINDEX, key);
  bool same = lua_rawequal(L, -1, -2) != 0;
  lua_pop(L, 2);
  return same;
}

bool IsValidName(std::string_view name) {
  auto word = [](char c) { return isalnum(static_cast<unsigned char>(c)) || c == '_'; };
  if (name.empty() || !(isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_')) {
    return false;
  }
  return std::all_of(name.begin(), name.end(),
                     [&](char c) { return word(c) || c == '.' || c == '-'; });
}

void SetString(lua_State* L, int table, const char* field, std::string_view value) {
  lua_pushlstring(L, value.data(), value.size());
  lua_setfield(L, table, field);
}

// Pushes table[field] without running metamethods.
void RawField(lua_State* L, int table, const char* field) {
  table = lua_absindex(L, table);
  lua_pushstring(L, field);
  lua_rawget(L, table);
}

std::string RawString(lua_State* L, int table, const char* field) {
  RawField(L, table, field);
  size_t len = 0;
  const char* s = lua_tolstring(L, -1, &len);
  std::string value = s != nullptr ? std::string(s, len) : std::string();
  lua_pop(L, 1);
  return value;
}

// keel.fn "name" { options }: the second call. Upvalue 1 is the name.
int NodeOptions(lua_State* L) {
  std::string name = lua_tostring(L, lua_upvalueindex(1));
  std::string where = CallerWhere(L);
  std::string prefix = where + ": node '" + name + "': ";
  if (lua_type(L, 1) != LUA_TTABLE) {
    return Raise(L, prefix + "expects a table of options, got " + luaL_typename(L, 1));
  }
  lua_settop(L, 1);
  lua_createtable(L, 0, 8);  // 2: the declaration
  lua_createtable(L, 0, 0);  // 3: the policy options
  SetString(L, 2, "name", name);
  SetString(L, 2, "where", where);
  lua_pushnil(L);
  while (lua_next(L, 1) != 0) {  // key at 4, value at 5
    if (lua_type(L, 4) != LUA_TSTRING) {
      return Raise(
          L, prefix + "options are name = value pairs; found a " + luaL_typename(L, 4) + " key");
    }
    std::string key = lua_tostring(L, 4);
    const NodeOption* rule = FindNodeOption(key);
    if (rule == nullptr) {
      return Raise(L, prefix + "unknown option '" + key + "'" + DidYouMean(key, NodeOptionNames()));
    }
    std::string expected = CheckNodeOption(L, 5, *rule);
    if (!expected.empty()) {
      return Raise(L, prefix + "option '" + key + "' " + expected + ", got " + luaL_typename(L, 5));
    }
    PushNodeOption(L, 5, *rule);  // 6
    if (rule->policy) {
      std::string json;
      Status status = LuaToJson(L, 6, &json);
      if (!status.ok()) return Raise(L, prefix + "option '" + key + "': " + status.message());
    }
    lua_pushvalue(L, 4);
    lua_insert(L, 6);
    lua_rawset(L, rule->policy ? 3 : 2);
    lua_settop(L, 4);
  }
  std::string policy;
  Status status = LuaToJson(L, 3, &policy);
  if (!status.ok()) return Raise(L, prefix + status.message());
  SetString(L, 2, "policy", policy);
  lua_settop(L, 2);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &kNodeMetaKey);
  lua_setmetatable(L, 2);
  return 1;
}

// keel.fn "name": checks the name and returns the function taking the options.
int NodeName(lua_State* L) {
  if (lua_type(L, 1) != LUA_TSTRING) {
    return Raise(
        L, CallerWhere(L) + ": keel.fn expects a node name (a string), got " + luaL_typename(L, 1));
  }
  std::string name = lua_tostring(L, 1);
  if (!IsValidName(name)) {
    return Raise(L, CallerWhere(L) + ": invalid node name '" + name +
                        "': use letters, digits, '_', '.' and '-', starting with a letter or '_'");
  }
  lua_settop(L, 1);
  lua_pushcclosure(L, &LuaTrampoline<NodeOptions>, 1);
  return 1;
}

// Stores the workflow option at 4/5 (key/value) into the workflow table at 2.
int SetWorkflowOption(lua_State* L, const std::string& prefix) {
  std::string key = lua_tostring(L, 4);
  if (key != "params" && key != "defaults") {
    return Raise(L,
                 prefix + "unknown option '" + key + "'" + DidYouMean(key, kWorkflowOptionNames));
  }
  std::string expected = prefix + "option '" + key + "' must be a table of name = value";
  if (lua_type(L, 5) != LUA_TTABLE) return Raise(L, expected + ", got " + luaL_typename(L, 5));
  std::string json;
  Status status = LuaToJson(L, 5, &json);
  if (!status.ok()) return Raise(L, prefix + "option '" + key + "': " + status.message());
  if (json.front() != '{') return Raise(L, expected + ", not a list");
  SetString(L, 2, key.c_str(), json);
  return 0;
}

// Explains why the item at the top of the stack is not a node declaration.
std::string NotANode(lua_State* L, lua_Integer i) {
  std::string item = "item " + std::to_string(i) + " ";
  if (lua_tocfunction(L, -1) == &LuaTrampoline<NodeOptions>) {
    lua_getupvalue(L, -1, 1);
    std::string name = lua_tostring(L, -1);
    lua_pop(L, 1);
    return item + "is keel.fn \"" + name + "\" without its { ... } of options";
  }
  return item + "is a " + luaL_typename(L, -1) + ", not a node (keel.fn \"name\" { ... })";
}

// keel.workflow "name" { entries }: the second call. Upvalue 1 is the name.
int WorkflowEntries(lua_State* L) {
  std::string name = lua_tostring(L, lua_upvalueindex(1));
  std::string where = CallerWhere(L);
  std::string prefix = where + ": workflow '" + name + "': ";
  if (ActiveNodeOf(L) != nullptr) {
    return Raise(L, prefix + "keel.workflow can only be used while the script loads");
  }
  if (lua_type(L, 1) != LUA_TTABLE) {
    return Raise(L, prefix + "expects a table of nodes and options, got " + luaL_typename(L, 1));
  }
  lua_settop(L, 1);
  lua_createtable(L, 0, 6);  // 2: the workflow
  lua_createtable(L, 0, 0);  // 3: its nodes
  SetString(L, 2, "name", name);
  SetString(L, 2, "where", where);
  SetString(L, 2, "params", "{}");
  SetString(L, 2, "defaults", "{}");
  lua_Integer last = 0;
  lua_pushnil(L);
  while (lua_next(L, 1) != 0) {  // key at 4, value at 5
    if (lua_type(L, 4) == LUA_TSTRING) {
      if (SetWorkflowOption(L, prefix) == kLuaRaise) return kLuaRaise;
    } else if (lua_isinteger(L, 4) && lua_tointeger(L, 4) >= 1) {
      last = std::max(last, lua_tointeger(L, 4));
    } else {
      return Raise(L, prefix + "unexpected " + luaL_typename(L, 4) + " key");
    }
    lua_settop(L, 4);
  }
  lua_Integer count = 0;
  for (lua_Integer i = 1; i <= last; ++i) {
    lua_rawgeti(L, 1, i);
    if (lua_isnil(L, -1)) {  // `cond and keel.fn ... or nil` leaves holes
      lua_pop(L, 1);
      continue;
    }
    if (!HasMeta(L, -1, &kNodeMetaKey)) return Raise(L, prefix + NotANode(L, i));
    lua_rawseti(L, 3, ++count);
  }
  lua_setfield(L, 2, "nodes");
  lua_rawgetp(L, LUA_REGISTRYINDEX, &kWorkflowListKey);  // 3
  lua_Integer declared = static_cast<lua_Integer>(lua_rawlen(L, 3));
  for (lua_Integer i = 1; i <= declared; ++i) {
    lua_rawgeti(L, 3, i);
    if (RawString(L, -1, "name") == name) {
      return Raise(L, where + ": workflow '" + name + "' is declared twice (first at " +
                          RawString(L, -1, "where") + ")");
    }
    lua_pop(L, 1);
  }
  lua_pushinteger(L, declared);
  lua_setfield(L, 2, "index");
  lua_rawgetp(L, LUA_REGISTRYINDEX, &kWorkflowMetaKey);
  lua_setmetatable(L, 2);
  lua_pushvalue(L, 2);
  lua_rawseti(L, 3, declared + 1);
  lua_settop(L, 2);
  return 1;
}

// keel.workflow "name": checks the name and returns the function taking the entries.
int WorkflowName(lua_State* L) {
  if (lua_type(L, 1) != LUA_TSTRING || !IsValidName(lua_tostring(L, 1))) {
    std::string got = lua_type(L, 1) == LUA_TSTRING ? "'" + std::string(lua_tostring(L, 1)) + "'"
                                                    : std::string("a ") + luaL_typename(L, 1);
    return Raise(L, CallerWhere(L) +
                        ": keel.workflow expects a workflow name (letters, digits, "
                        "'_', '.' and '-'), got " +
                        got);
  }
  lua_settop(L, 1);
  lua_pushcclosure(L, &LuaTrampoline<WorkflowEntries>, 1);
  return 1;
}

void ReadNode(lua_State* L, int decl, NodeDeclaration* node, NodeFunctions* functions) {
  node->name = RawString(L, decl, "name");
  node->where = RawString(L, decl, "where");
  node->policy = MakeJson(RawString(L, decl, "policy"));
  RawField(L, decl, "optional");
  node->optional = lua_toboolean(L, -1) != 0;
  RawField(L, decl, "after");
  if (lua_istable(L, -1)) {
    lua_Integer n = static_cast<lua_Integer>(lua_rawlen(L, -1));
    for (lua_Integer i = 1; i <= n; ++i) {
      lua_rawgeti(L, -1, i);
      node->after.emplace_back(lua_tostring(L, -1));
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 2);
  RawField(L, decl, "run");
  node->has_run = lua_isfunction(L, -1);
  functions->run = node->has_run ? luaL_ref(L, LUA_REGISTRYINDEX) : kNoFunction;
  if (!node->has_run) lua_pop(L, 1);
  RawField(L, decl, "when");
  node->has_when = lua_isfunction(L, -1);
  functions->when = node->has_when ? luaL_ref(L, LUA_REGISTRYINDEX) : kNoFunction;
  if (!node->has_when) lua_pop(L, 1);
}

}  // namespace

bool IsWorkflowObject(lua_State* L, int index) { return HasMeta(L, index, &kWorkflowMetaKey); }

std::string CallerWhere(lua_State* L) {
  lua_Debug ar;
  if (lua_getstack(L, 1, &ar) == 0 || lua_getinfo(L, "Sl", &ar) == 0) return "?";
  std::string where = ar.source[0] == '@' ? ar.source + 1 : ar.short_src;
  if (ar.currentline > 0) where += ":" + std::to_string(ar.currentline);
  return where;
}

void InstallDeclarations(lua_State* L) {
  // Protected (__metatable), so a script cannot swap in metamethods that the
  // reader would trip over.
  for (auto [key, name] :
       {std::pair{&kNodeMetaKey, "keel.node"}, std::pair{&kWorkflowMetaKey, "keel.workflow"}}) {
    lua_createtable(L, 0, 2);
    lua_pushstring(L, name);
    lua_setfield(L, -2, "__name");
    lua_pushstring(L, name);
    lua_setfield(L, -2, "__metatable");
    lua_rawsetp(L, LUA_REGISTRYINDEX, key);
  }
  lua_createtable(L, 0, 0);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &kWorkflowListKey);
}

void AddDeclarationFunctions(lua_State* L) {
  lua_pushcfunction(L, &LuaTrampoline<NodeName>);
  lua_setfield(L, -2, "fn");
  lua_pushcfunction(L, &LuaTrampoline<WorkflowName>);
  lua_setfield(L, -2, "workflow");
}

Status ReadDeclarations(lua_State* L, int returned, const std::string& chunk_name,
                        ScriptDeclarations* declarations, std::vector<NodeFunctions>* functions) {
  if (returned == 0 || !HasMeta(L, returned, &kWorkflowMetaKey)) {
    std::string got = returned == 0 ? "nil" : luaL_typename(L, returned);
    return Status::Error(
        ErrorKind::kPermanent,
        chunk_name + ": the script must return a workflow (keel.workflow ...), got " + got);
  }
  int top = lua_gettop(L);
  RawField(L, returned, "index");
  declarations->main = static_cast<int>(lua_tointeger(L, -1));
  lua_rawgetp(L, LUA_REGISTRYINDEX, &kWorkflowListKey);
  int list = lua_gettop(L);
  lua_Integer n = static_cast<lua_Integer>(lua_rawlen(L, list));
  for (lua_Integer i = 1; i <= n; ++i) {
    lua_rawgeti(L, list, i);
    int wf = lua_gettop(L);
    WorkflowDeclaration& workflow = declarations->workflows.emplace_back();
    workflow.name = RawString(L, wf, "name");
    workflow.where = RawString(L, wf, "where");
    workflow.params = MakeJson(RawString(L, wf, "params"));
    workflow.defaults = MakeJson(RawString(L, wf, "defaults"));
    RawField(L, wf, "nodes");
    int nodes = lua_gettop(L);
    lua_Integer count = static_cast<lua_Integer>(lua_rawlen(L, nodes));
    for (lua_Integer j = 1; j <= count; ++j) {
      lua_rawgeti(L, nodes, j);
      ReadNode(L, lua_gettop(L), &workflow.nodes.emplace_back(), &functions->emplace_back());
      lua_pop(L, 1);
    }
    lua_settop(L, list);
  }
  lua_settop(L, top);
  return Status::Ok();
}

}  // namespace keel
