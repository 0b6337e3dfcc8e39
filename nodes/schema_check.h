#pragma once
// SchemaProblem: whether a JSON text is a usable JSON Schema (the keywords
// keel and the providers rely on, per draft 4 / 2020-12 alike), so that a
// broken `output` schema or tool `parameters` is refused when the script
// loads instead of failing every call. Unknown keywords pass, as the JSON
// Schema specification says. A pure function; any thread.

#include <string>

namespace keel {

// "" when `schema_json` is a valid schema; otherwise where and what is
// wrong, e.g. "at properties.age.type: must be a type name (string,
// number, integer, boolean, object, array, null) or a list of them".
std::string SchemaProblem(const std::string& schema_json);

}  // namespace keel
