#include "scripts/active_node.h"

#include "lua.hpp"

namespace keel {

void SetStateAnchor(lua_State* L, StateAnchor* anchor) {
  *static_cast<StateAnchor**>(lua_getextraspace(L)) = anchor;
}

ActiveNode* ActiveNodeOf(lua_State* L) {
  StateAnchor* anchor = *static_cast<StateAnchor**>(lua_getextraspace(L));
  return anchor != nullptr ? anchor->active : nullptr;
}

namespace {

void StopHook(lua_State* L, lua_Debug*) {
  ActiveNode* active = ActiveNodeOf(L);
  if (active == nullptr) return;
  StopReason reason = active->CheckStop();
  if (reason == StopReason::kNone) return;
  // A slice ends only at the node's own coroutine: yielding a coroutine the
  // script created would hand control back to the script, not to keel.
  if (reason == StopReason::kSlice && (L != active->coroutine || !lua_isyieldable(L))) return;
  active->stop = reason;
  if (lua_isyieldable(L)) {
    // A count hook yields by calling lua_yield and returning; no longjmp.
    lua_yield(L, 0);
    return;
  }
  lua_pushliteral(L, "keel: node stopped");
  lua_error(L);
}

}  // namespace

void InstallStopHook(lua_State* co) {
  lua_sethook(co, &StopHook, LUA_MASKCOUNT, kStopCheckInstructions);
}

}  // namespace keel
