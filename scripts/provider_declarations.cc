// keel.provider "name" { options } (see declarations.h): the provider's
// options checked, the defaults of its kind filled in, the provider
// registered in the state.

#include <string>

#include "lua.hpp"
#include "scripts/declaration_building.h"
#include "scripts/declaration_registry.h"
#include "scripts/lua_trampoline.h"
#include "scripts/node_options.h"

namespace keel::declaration {
namespace {

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

}  // namespace

int ProviderName(lua_State* L) {
  return DeclarationName(L, "provider", &LuaTrampoline<ProviderOptions>);
}

}  // namespace keel::declaration
