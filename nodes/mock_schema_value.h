#pragma once
// SmallestJson: the smallest JSON value that satisfies a JSON schema — what
// the mock LLM answers when a request asks for output matching a schema.
// Handles type, properties/required, items/minItems, enum, const,
// anyOf/oneOf/allOf, minimum, minLength and "$ref"s within the schema;
// recursive or huge schemas are cut off (depth 24, 10000 values). A pure
// function; any thread.

#include <rapidjson/document.h>

#include <string>

namespace keel {

// The value as JSON text; "null" when nothing can be made of `schema`.
std::string SmallestJson(const rapidjson::Value& schema);

}  // namespace keel
