#include "scripts/dynamic_declarations.h"

#include <algorithm>
#include <climits>

#include "lua.hpp"
#include "scripts/declaration_registry.h"
#include "scripts/node_options.h"

namespace keel {

using namespace declaration;

namespace {

bool Has(lua_State* L, int decl, const char* field) {
  RawField(L, decl, field);
  bool has = !lua_isnil(L, -1);
  lua_pop(L, 1);
  return has;
}

int RefFunction(lua_State* L, int decl, const char* field) {
  RawField(L, decl, field);
  if (lua_isfunction(L, -1)) return luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pop(L, 1);
  return kNoFunction;
}

double Number(lua_State* L, int decl, const char* field) {
  RawField(L, decl, field);
  double value = lua_tonumber(L, -1);
  lua_pop(L, 1);
  return value;
}

}  // namespace

std::string CheckDynamicDeclaration(lua_State* L, int decl, unsigned owner) {
  decl = lua_absindex(L, decl);
  if (owner == kMapOption) {
    if (!Has(L, decl, "over")) {
      return "a map needs option 'over' (a function of ctx returning the list of items)";
    }
    bool node = Has(L, decl, "node");
    bool workflow = Has(L, decl, "workflow");
    if (node && workflow) return "give a map either 'node' or 'workflow', not both";
    if (!node && !workflow) {
      return "a map needs option 'node' (keel.fn { run = ... }, keel.agent { ... }) or "
             "'workflow' (a workflow run per item)";
    }
    return "";
  }
  const char* what = owner == kCallOption ? "a call" : "a loop";
  if (!Has(L, decl, "workflow")) {
    return std::string(what) + " needs option 'workflow' (the workflow to run, or its name)";
  }
  if (owner == kLoopOption) {
    if (!Has(L, decl, "max_iterations")) {
      return "a loop needs option 'max_iterations' (a whole number of iterations at most)";
    }
    if (!Has(L, decl, "done_when")) {
      return "a loop needs option 'done_when' (a function of (output, ctx) that says it is done)";
    }
  }
  return "";
}

void ReadDynamicNode(lua_State* L, int decl, NodeDeclaration* node, NodeFunctions* functions) {
  decl = lua_absindex(L, decl);
  node->workflow = RawString(L, decl, "workflow");
  node->max_concurrency =
      static_cast<int>(std::min(Number(L, decl, "max_concurrency"), double{INT_MAX}));
  node->tolerate = Number(L, decl, "tolerate");
  node->max_iterations =
      static_cast<int>(std::min(Number(L, decl, "max_iterations"), double{INT_MAX}));
  functions->value = RefFunction(L, decl, node->kind == "map" ? "over" : "params");
  node->has_value = functions->value != kNoFunction;
  functions->done_when = RefFunction(L, decl, "done_when");
  node->has_done_when = functions->done_when != kNoFunction;
}

}  // namespace keel
