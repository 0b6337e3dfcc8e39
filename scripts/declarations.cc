#include "scripts/declarations.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <string_view>
#include <utility>

#include "engine/did_you_mean.h"
#include "lua.hpp"
#include "scripts/active_node.h"
#include "scripts/declaration_replay.h"
#include "scripts/declaration_registry.h"
#include "scripts/dynamic_declarations.h"
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

}  // namespace declaration

using namespace declaration;

namespace {

constexpr std::string_view kWorkflowOptionNames[] = {"params", "defaults", "budget", "on_failure"};

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

// Stack slots of a declaration being built: the options the script gave,
// then the tables they are stored in (see OptionStore).
constexpr int kGiven = 1;
constexpr int kDecl = 2;
constexpr int kPolicy = 3;
constexpr int kAgent = 4;

// What a declaration being built is called, where, and the start of its
// messages ("file.lua:3: node 'draft': ").
struct Declaring {
  std::string name;
  std::string where;
  std::string prefix;
};

// Starts the second call of keel.fn, keel.agent (`what` is "node"),
// keel.provider or keel.workflow: upvalue 1 is the name, the table at kGiven
// holds `contents`. Pushes the declaration table (kDecl) holding name
// and where. Providers and workflows are refused once the script has loaded.
// Returns 0, or kLuaRaise with the message pushed.
int BeginDeclaration(lua_State* L, const std::string& what, const std::string& contents,
                     Declaring* d, const char* name = nullptr) {
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

int StoreSlot(unsigned owner, OptionStore store) {
  if (owner == kProviderOption || store == OptionStore::kDeclaration) return kDecl;
  return store == OptionStore::kPolicy ? kPolicy : kAgent;
}

// Checks every option in the table at kGiven against what `owner` accepts and
// stores its value in the slot of its OptionStore; an agent's tool functions
// go to the declaration's `tool_runs`. Returns 0, or kLuaRaise with the
// message pushed.
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

// Appends the declaration at kDecl to the registry list at `list_key` unless
// that list has an entry called d.name already. Returns the number of entries
// before it, or kLuaRaise with the message pushed.
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

// Fills in what a provider declaration at kDecl leaves to its kind. Returns
// what is wrong with the declaration as a whole, or "".
std::string FinishProvider(lua_State* L) {
  std::string kind = RawString(L, kDecl, "kind");
  if (kind.empty()) return "option 'kind' is required (\"openai\", \"anthropic\" or \"mock\")";
  RawField(L, kDecl, "latency");
  bool has_latency = !lua_isnil(L, -1);
  lua_pop(L, 1);
  if (has_latency && kind != "mock") return "option 'latency' is for mock providers";
  RawField(L, kDecl, "base_url");
  bool has_url = !lua_isnil(L, -1);
  lua_pop(L, 1);
  if (!has_url) {
    SetString(L, kDecl, "base_url",
              kind == "openai"      ? "https://api.openai.com/v1"
              : kind == "anthropic" ? "https://api.anthropic.com/v1"
                                    : "");
  }
  return "";
}

// keel.provider "name" { options }: the second call. Upvalue 1 is the name.
// Registers the provider and returns its name.
int ProviderOptions(lua_State* L) {
  Declaring d;
  if (BeginDeclaration(L, "provider", "options", &d) == kLuaRaise) return kLuaRaise;
  if (StoreOptions(L, kProviderOption, d.prefix) == kLuaRaise) return kLuaRaise;
  std::string problem = FinishProvider(L);
  if (!problem.empty()) return Raise(L, d.prefix + problem);
  if (Register(L, &kProviderListKey, "provider", d) == kLuaRaise) return kLuaRaise;
  lua_pushlstring(L, d.name.data(), d.name.size());
  return 1;
}

// Stores the workflow option `budget` at 5 into the workflow table at 2.
int SetBudget(lua_State* L, const std::string& prefix) {
  std::string problem = CheckBudget(L, 5);
  if (!problem.empty()) return Raise(L, prefix + problem);
  RawField(L, 5, "tokens");
  lua_setfield(L, 2, "budget_tokens");
  RawField(L, 5, "cost");
  lua_setfield(L, 2, "budget_cost");
  return 0;
}

// Stores the workflow option `on_failure` at 5 into the workflow table at 2:
// the name of a workflow (whether one is declared is checked once the file
// has loaded, by ValidateEscalations).
int SetOnFailure(lua_State* L, const std::string& prefix) {
  if (lua_type(L, 5) != LUA_TSTRING || !IsValidName(lua_tostring(L, 5))) {
    std::string got = lua_type(L, 5) == LUA_TSTRING ? "'" + std::string(lua_tostring(L, 5)) + "'"
                                                    : std::string("a ") + luaL_typename(L, 5);
    return Raise(L, prefix + "option 'on_failure' must be the name of a workflow to run when a "
                             "run fails, got " + got);
  }
  lua_pushvalue(L, 5);
  lua_setfield(L, 2, "on_failure");
  return 0;
}

// Stores the workflow option at 4/5 (key/value) into the workflow table at 2.
int SetWorkflowOption(lua_State* L, const std::string& prefix) {
  std::string key = lua_tostring(L, 4);
  if (key == "budget") return SetBudget(L, prefix);
  if (key == "on_failure") return SetOnFailure(L, prefix);
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
    lua_getupvalue(L, -2, 2);
    std::string text = item + "is keel." + KindName(lua_tointeger(L, -1)) + " \"" +
                       lua_tostring(L, -2) + "\" without its { ... } of options";
    lua_pop(L, 2);
    return text;
  }
  return item + "is a " + luaL_typename(L, -1) + ", not a node (keel.fn \"name\" { ... })";
}

// keel.workflow "name" { entries }: the second call. Upvalue 1 is the name.
int WorkflowEntries(lua_State* L) {
  Declaring d;
  if (BeginDeclaration(L, "workflow", "nodes and options", &d) == kLuaRaise) {
    return kLuaRaise;
  }
  const std::string& prefix = d.prefix;
  lua_createtable(L, 0, 0);  // 3: its nodes
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
    if (RawString(L, -1, "name").empty()) {
      return Raise(L, prefix + "item " + std::to_string(i) +
                          " is a node without a name: name it (keel.fn \"name\" { ... }) or make "
                          "it a keel.map's `node`");
    }
    lua_rawseti(L, 3, ++count);
  }
  lua_setfield(L, 2, "nodes");
  lua_settop(L, 2);
  int index = Register(L, &kWorkflowListKey, "workflow", d);
  if (index == kLuaRaise) return kLuaRaise;
  lua_pushinteger(L, index);
  lua_setfield(L, 2, "index");
  lua_rawgetp(L, LUA_REGISTRYINDEX, &kWorkflowMetaKey);
  lua_setmetatable(L, 2);
  return 1;
}

// keel.workflow "name" and keel.provider "name": checks the name and returns
// `second`, the function taking the table, with the name as its upvalue.
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

int WorkflowName(lua_State* L) {
  return DeclarationName(L, "workflow", &LuaTrampoline<WorkflowEntries>);
}

int ProviderName(lua_State* L) {
  return DeclarationName(L, "provider", &LuaTrampoline<ProviderOptions>);
}

}  // namespace

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
