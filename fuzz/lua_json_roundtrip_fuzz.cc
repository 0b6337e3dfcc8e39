// Fuzzes JSON text -> Lua -> JSON (PushJson, LuaToJson in
// scripts/lua_json.h). Properties: no crash; PushJson accepts exactly what
// ParseUntrustedJson accepts (both bound depth and check UTF-8), except a
// leading byte order mark, which only ParseUntrustedJson skips; a decoded
// value encodes again, and the result decodes and encodes to the same text
// (canonical after one trip); the stack is left as found.

#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz/fuzz_check.h"
#include "fuzz/lua_state.h"
#include "nodes/json_document.h"
#include "nodes/untrusted_json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace keel;
  lua_State* L = fuzz::FuzzLuaState();
  std::string_view text(reinterpret_cast<const char*>(data), size);
  Status pushed = PushJson(L, text);
  JsonDocument doc;
  Status untrusted = ParseUntrustedJson(text, &doc);
  if (!text.starts_with("\xEF\xBB\xBF")) {
    FUZZ_CHECK(pushed.ok() == untrusted.ok(), pushed.message() + " / " + untrusted.message());
  }
  if (!pushed.ok()) {
    FUZZ_CHECK(lua_gettop(L) == 0, pushed.message());
    return 0;
  }
  FUZZ_CHECK(lua_gettop(L) == 1, "");
  std::string once;
  Status encoded = LuaToJson(L, -1, &once);
  FUZZ_CHECK(encoded.ok(), encoded.message());
  FUZZ_CHECK(lua_gettop(L) == 1, once);
  lua_settop(L, 0);
  Status again = PushJson(L, once);
  FUZZ_CHECK(again.ok(), again.message() + " in " + once);
  std::string twice;
  Status reencoded = LuaToJson(L, -1, &twice);
  FUZZ_CHECK(reencoded.ok() && twice == once, once + " then " + twice);
  lua_settop(L, 0);
  return 0;
}
