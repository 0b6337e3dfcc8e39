// The DSL's declarations (see declarations.h): the registry keys and raw
// table access they share with the reader, the steps every declaration
// takes (declaration_building.h), and installing keel.fn, keel.agent,
// keel.provider, keel.workflow and the other node kinds in a state. Each
// kind of declaration is in its own file: node_declarations.cc,
// provider_declarations.cc, workflow_declarations.cc.

#include "scripts/declarations.h"

#include <algorithm>
#include <string_view>
#include <utility>

#include "lua.hpp"
#include "scripts/active_node.h"
#include "scripts/declaration_building.h"
#include "scripts/declaration_registry.h"
#include "scripts/lua_json.h"
#include "scripts/lua_trampoline.h"
#include "scripts/node_options.h"

namespace keel {

static_assert(kNoFunction == LUA_NOREF);

namespace declaration {

char kNodeMetaKey;
char kWorkflowMetaKey;
char kWorkflowListKey;
char kProviderListKey;

bool HasMeta(lua_State* L, int index, const void* key) {
  if (!lua_getmetatable(L, index)) return false;
  lua_rawgetp(L, LUA_REGISTRYINDEX, key);
  bool same = lua_rawequal(L, -1, -2) != 0;
  lua_pop(L, 2);
  return same;
}

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

namespace {

int StoreSlot(unsigned owner, OptionStore store) {
  if (owner == kProviderOption || store == OptionStore::kDeclaration) return kDecl;
  return store == OptionStore::kPolicy ? kPolicy : kAgent;
}

}  // namespace

int Raise(lua_State* L, const std::string& message) {
  lua_pushlstring(L, message.data(), message.size());
  return kLuaRaise;
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

int BeginDeclaration(lua_State* L, const std::string& what, const std::string& contents,
                     Declaring* d, const char* name) {
  d->name = name != nullptr ? name : lua_tostring(L, lua_upvalueindex(1));
  d->where = CallerWhere(L);
  d->prefix = d->where + ": " + what + " '" + d->name + "': ";
  if (d->name.empty()) d->prefix = d->where + ": unnamed " + what + ": ";
  if (what != "node" && ActiveNodeOf(L) != nullptr) {
    return Raise(L, d->prefix + "keel." + what + " can only be used while the script loads");
  }
  if (lua_type(L, kGiven) != LUA_TTABLE) {
    return Raise(
        L, d->prefix + "expects a table of " + contents + ", got " + luaL_typename(L, kGiven));
  }
  lua_settop(L, kGiven);
  lua_createtable(L, 0, 8);
  SetString(L, kDecl, "name", d->name);
  SetString(L, kDecl, "where", d->where);
  return 0;
}

int StoreOptions(lua_State* L, unsigned owner, const std::string& prefix) {
  int key = lua_gettop(L) + 1;
  int value = key + 1;
  lua_pushnil(L);
  while (lua_next(L, kGiven) != 0) {
    if (lua_type(L, key) != LUA_TSTRING) {
      return Raise(
          L, prefix + "options are name = value pairs; found a " + luaL_typename(L, key) + " key");
    }
    std::string name = lua_tostring(L, key);
    const DslOption* option = FindOption(owner, name);
    if (option == nullptr) return Raise(L, prefix + UnknownOption(owner, name));
    std::string problem = CheckOption(L, value, *option);
    if (!problem.empty()) return Raise(L, prefix + problem);
    PushOption(L, value, *option);
    int slot = StoreSlot(owner, option->store);
    std::string json;
    Status status = slot == kDecl ? Status::Ok() : LuaToJson(L, -1, &json);
    if (!status.ok()) return Raise(L, prefix + "option '" + name + "': " + status.message());
    if (option->type == OptionType::kTools) {
      PushToolFunctions(L, value);
      lua_setfield(L, kDecl, "tool_runs");
    }
    lua_pushvalue(L, key);
    lua_insert(L, -2);
    lua_rawset(L, slot);
    lua_settop(L, key);
  }
  return 0;
}

int Register(lua_State* L, const void* list_key, const char* what, const Declaring& d) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, list_key);
  int list = lua_gettop(L);
  lua_Integer declared = static_cast<lua_Integer>(lua_rawlen(L, list));
  for (lua_Integer i = 1; i <= declared; ++i) {
    lua_rawgeti(L, list, i);
    if (RawString(L, -1, "name") == d.name) {
      return Raise(L, d.where + ": " + what + " '" + d.name + "' is declared twice (first at " +
                          RawString(L, -1, "where") + ")");
    }
    lua_pop(L, 1);
  }
  lua_pushvalue(L, kDecl);
  lua_rawseti(L, list, declared + 1);
  lua_settop(L, list - 1);
  return static_cast<int>(declared);
}

int DeclarationName(lua_State* L, const std::string& what, lua_CFunction second) {
  if (lua_type(L, 1) != LUA_TSTRING || !IsValidName(lua_tostring(L, 1))) {
    std::string got = lua_type(L, 1) == LUA_TSTRING ? "'" + std::string(lua_tostring(L, 1)) + "'"
                                                    : std::string("a ") + luaL_typename(L, 1);
    return Raise(L, CallerWhere(L) + ": keel." + what + " expects a " + what +
                        " name (letters, digits, '_', '.' and '-'), got " + got);
  }
  lua_settop(L, 1);
  lua_pushcclosure(L, second, 1);
  return 1;
}

}  // namespace declaration

using namespace declaration;

bool IsWorkflowObject(lua_State* L, int index) { return HasMeta(L, index, &kWorkflowMetaKey); }

bool IsNodeDeclaration(lua_State* L, int index) { return HasMeta(L, index, &kNodeMetaKey); }

std::string CallerWhere(lua_State* L) {
  lua_Debug ar;
  std::string nearest_lua;
  for (int level = 1; lua_getstack(L, level, &ar) != 0; ++level) {
    if (lua_getinfo(L, "Sl", &ar) == 0 || ar.currentline <= 0) continue;
    std::string line = ":" + std::to_string(ar.currentline);
    if (ar.source[0] == '@') return ar.source + 1 + line;
    if (nearest_lua.empty()) nearest_lua = ar.short_src + line;
  }
  return nearest_lua.empty() ? "?" : nearest_lua;
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
  for (const char* list : {&kWorkflowListKey, &kProviderListKey}) {
    lua_createtable(L, 0, 0);
    lua_rawsetp(L, LUA_REGISTRYINDEX, list);
  }
}

void AddDeclarationFunctions(lua_State* L) {
  for (auto [owner, field] :
       {std::pair{kFnOption, "fn"}, std::pair{kAgentOption, "agent"}, std::pair{kMapOption, "map"},
        std::pair{kCallOption, "call"}, std::pair{kLoopOption, "loop"},
        std::pair{kWaitOption, "wait"}}) {
    lua_pushinteger(L, owner);
    lua_pushcclosure(L, &LuaTrampoline<NodeName>, 1);
    lua_setfield(L, -2, field);
  }
  lua_pushcfunction(L, &LuaTrampoline<ProviderName>);
  lua_setfield(L, -2, "provider");
  lua_pushcfunction(L, &LuaTrampoline<WorkflowName>);
  lua_setfield(L, -2, "workflow");
}

}  // namespace keel
