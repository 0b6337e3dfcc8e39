#pragma once
// kMaxJsonDepth: the deepest nesting of JSON arrays and objects keel takes
// in, whether from a script (keel.json, scripts/lua_json.h) or from outside
// (ParseUntrustedJson, nodes/untrusted_json.h). One limit, so that whatever
// a node may output, its dependents can read.

namespace keel {

inline constexpr int kMaxJsonDepth = 200;

}  // namespace keel
