#include <algorithm>
#include <climits>
#include <string>
#include <utility>
#include <vector>

#include "lua.hpp"
#include "scripts/declaration_registry.h"
#include "scripts/declarations.h"
#include "scripts/dynamic_declarations.h"

namespace keel {

using namespace declaration;

namespace {

double RawNumber(lua_State* L, int table, const char* field) {
  RawField(L, table, field);
  double value = lua_tonumber(L, -1);
  lua_pop(L, 1);
  return value;
}

// Pushes registry references to the functions at table[field], sorted by
// their string keys, onto *refs.
void RefFunctions(lua_State* L, int table, const char* field,
                  std::vector<std::pair<std::string, int>>* refs) {
  RawField(L, table, field);
  if (lua_istable(L, -1)) {
    std::vector<std::string> names;
    lua_pushnil(L);
    while (lua_next(L, -2) != 0) {
      lua_pop(L, 1);
      names.emplace_back(lua_tostring(L, -1));
    }
    std::sort(names.begin(), names.end());
    for (const std::string& name : names) {
      RawField(L, -1, name.c_str());
      refs->emplace_back(name, luaL_ref(L, LUA_REGISTRYINDEX));
    }
  }
  lua_pop(L, 1);
}

// The registry reference of the function at table[field], or kNoFunction.
int RefFunction(lua_State* L, int table, const char* field) {
  RawField(L, table, field);
  if (lua_isfunction(L, -1)) return luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pop(L, 1);
  return kNoFunction;
}

void ReadNode(lua_State* L, int decl, NodeDeclaration* node, NodeFunctions* functions) {
  node->name = RawString(L, decl, "name");
  node->where = RawString(L, decl, "where");
  node->kind = RawString(L, decl, "kind");
  node->policy = MakeJson(RawString(L, decl, "policy"));
  if (node->kind == "agent") node->agent = MakeJson(RawString(L, decl, "agent"));
  if (node->kind == "wait") node->wait = MakeJson(RawString(L, decl, "wait"));
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
  functions->run = RefFunction(L, decl, "run");
  node->has_run = functions->run != kNoFunction;
  functions->when = RefFunction(L, decl, "when");
  node->has_when = functions->when != kNoFunction;
  RefFunctions(L, decl, "tool_runs", &functions->tools);
}

// Reads the keel.provider declaration at `decl`.
ProviderConfig ReadProvider(lua_State* L, int decl) {
  ProviderConfig provider;
  provider.name = RawString(L, decl, "name");
  provider.where = RawString(L, decl, "where");
  provider.kind = RawString(L, decl, "kind");
  provider.base_url = RawString(L, decl, "base_url");
  provider.model = RawString(L, decl, "model");
  provider.api_key_env = RawString(L, decl, "api_key_env");
  provider.max_concurrency =
      static_cast<int>(std::min(RawNumber(L, decl, "max_concurrency"), double{INT_MAX}));
  provider.rpm = RawNumber(L, decl, "rpm");
  provider.tpm = RawNumber(L, decl, "tpm");
  provider.latency = RawNumber(L, decl, "latency");
  provider.ca_file = RawString(L, decl, "ca_file");
  RawField(L, decl, "http2");
  provider.http2 = !lua_isboolean(L, -1) || lua_toboolean(L, -1);
  lua_pop(L, 1);
  RawField(L, decl, "record");  // checked: nil, a boolean or a cap in bytes
  if (lua_isboolean(L, -1) && !lua_toboolean(L, -1)) {
    provider.record_bytes = 0;
  } else if (lua_type(L, -1) == LUA_TNUMBER) {
    provider.record_bytes = static_cast<size_t>(lua_tointeger(L, -1));
  }
  lua_pop(L, 1);
  RawField(L, decl, "prices");
  if (lua_istable(L, -1)) {
    provider.input_price = RawNumber(L, -1, "input");
    provider.output_price = RawNumber(L, -1, "output");
  }
  RawField(L, decl, "health");
  if (lua_istable(L, -1)) provider.health_interval = RawNumber(L, -1, "interval");
  lua_pop(L, 1);
  RawField(L, decl, "headers");
  if (lua_istable(L, -1)) {
    lua_pushnil(L);
    while (lua_next(L, -2) != 0) {
      provider.headers.emplace_back(lua_tostring(L, -2), lua_tostring(L, -1));
      lua_pop(L, 1);
    }
    std::sort(provider.headers.begin(), provider.headers.end());
  }
  lua_pop(L, 2);
  return provider;
}

}  // namespace

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
    workflow.on_failure = RawString(L, wf, "on_failure");
    RawField(L, wf, "budget_tokens");
    workflow.budget.max_tokens = lua_tointeger(L, -1);
    lua_pop(L, 1);
    workflow.budget.max_cost = RawNumber(L, wf, "budget_cost");
    RawField(L, wf, "nodes");
    int nodes = lua_gettop(L);
    lua_Integer count = static_cast<lua_Integer>(lua_rawlen(L, nodes));
    for (lua_Integer j = 1; j <= count; ++j) {
      lua_rawgeti(L, nodes, j);
      int decl = lua_gettop(L);
      NodeDeclaration& node = workflow.nodes.emplace_back();
      ReadNode(L, decl, &node, &functions->emplace_back());
      if (node.kind == "map" || node.kind == "call" || node.kind == "loop") {
        ReadDynamicNode(L, decl, &node, &functions->back());
        RawField(L, decl, "node");
        if (lua_istable(L, -1)) {
          // A map's item: its functions follow the map's.
          NodeDeclaration& inner = node.inner.emplace_back();
          ReadNode(L, lua_gettop(L), &inner, &functions->emplace_back());
          inner.after = node.after;  // an item sees the map's dependencies
        }
        lua_pop(L, 1);
      }
      lua_pop(L, 1);
    }
    lua_settop(L, list);
  }
  lua_rawgetp(L, LUA_REGISTRYINDEX, &kProviderListKey);
  n = static_cast<lua_Integer>(lua_rawlen(L, -1));
  for (lua_Integer i = 1; i <= n; ++i) {
    lua_rawgeti(L, -1, i);
    declarations->providers.push_back(ReadProvider(L, lua_gettop(L)));
    lua_pop(L, 1);
  }
  ReadSchedules(L, &declarations->schedules);
  lua_settop(L, top);
  return Status::Ok();
}

}  // namespace keel
