#include "scripts/wait_results.h"

#include "lua.hpp"
#include "scripts/keel_module.h"
#include "scripts/lua_json.h"

namespace keel {

WaitResult ResumeWithJson(std::string json, ErrorKind kind, std::string what) {
  return [json = std::move(json), kind, what = std::move(what)](lua_State* co) {
    if (Status pushed = PushJson(co, json); !pushed.ok()) {
      lua_pushboolean(co, 0);
      PushFailure(co, Status::Error(kind, what + ": " + pushed.message()));
      return 2;
    }
    lua_pushboolean(co, 1);
    lua_insert(co, -2);
    return 2;
  };
}

WaitResult ResumeWithFailure(Status status) {
  return [status = std::move(status)](lua_State* co) {
    lua_pushboolean(co, 0);
    PushFailure(co, status);
    return 2;
  };
}

}  // namespace keel
