#include "nodes/schema_check.h"

#include <string_view>

#include "nodes/json_document.h"
#include "nodes/wire_json.h"

namespace keel {
namespace {

using rapidjson::Value;

constexpr std::string_view kTypeNames[] = {"string", "number", "integer", "boolean",
                                           "object", "array",  "null"};

bool IsTypeName(const Value& v) {
  if (!v.IsString()) return false;
  std::string_view name(v.GetString(), v.GetStringLength());
  for (std::string_view known : kTypeNames) {
    if (name == known) return true;
  }
  return false;
}

bool IsCount(const Value& v) { return v.IsNumber() && v.IsInt64() && v.GetInt64() >= 0; }

// Walks a schema and the schemas inside it, checking the value of every
// keyword it knows; stops at the first problem.
class SchemaWalker {
 public:
  std::string problem;

  bool Schema(const Value& v, const std::string& at) {
    if (v.IsBool()) return true;  // `true` and `false` are schemas too
    if (!v.IsObject()) return Fail(at, "a schema must be a table (a JSON object)");
    for (const auto& member : v.GetObject()) {
      std::string key(member.name.GetString(), member.name.GetStringLength());
      if (!Keyword(key, member.value, Join(at, key))) return false;
    }
    return true;
  }

 private:
  bool Keyword(const std::string& key, const Value& x, const std::string& at) {
    if (key == "type") {
      if (IsTypeName(x)) return true;
      if (x.IsArray() && !x.Empty()) {
        for (const Value& item : x.GetArray()) {
          if (!IsTypeName(item)) return Fail(at, kTypeExpected);
        }
        return true;
      }
      return Fail(at, kTypeExpected);
    }
    if (key == "properties" || key == "patternProperties" || key == "definitions" ||
        key == "$defs" || key == "dependentSchemas") {
      if (!x.IsObject()) return Fail(at, "must be a table of NAME = schema");
      for (const auto& m : x.GetObject()) {
        if (!Schema(m.value, Join(at, std::string(m.name.GetString(), m.name.GetStringLength())))) {
          return false;
        }
      }
      return true;
    }
    if (key == "items" && x.IsArray()) return SchemaList(x, at, false);
    if (key == "prefixItems" || key == "allOf" || key == "anyOf" || key == "oneOf") {
      return SchemaList(x, at, true);
    }
    if (key == "items" || key == "not" || key == "contains" || key == "propertyNames" ||
        key == "if" || key == "then" || key == "else" || key == "additionalProperties" ||
        key == "additionalItems" || key == "unevaluatedProperties" || key == "unevaluatedItems") {
      return Schema(x, at);
    }
    if (key == "required") {
      if (x.IsObject() && x.ObjectEmpty()) {
        return Fail(at,
                    "must be a list of property names (an empty table is an object here; "
                    "write keel.array() for an empty list)");
      }
      if (!x.IsArray()) return Fail(at, "must be a list of property names");
      for (const Value& item : x.GetArray()) {
        if (!item.IsString()) return Fail(at, "must be a list of property names");
      }
      return true;
    }
    if (key == "enum") {
      return x.IsArray() && !x.Empty() ? true
                                       : Fail(at, "must be a non-empty list of the allowed values");
    }
    if (key == "minimum" || key == "maximum") {
      return x.IsNumber() ? true : Fail(at, "must be a number");
    }
    if (key == "exclusiveMinimum" || key == "exclusiveMaximum") {
      return x.IsNumber() || x.IsBool() ? true : Fail(at, "must be a number (or true/false)");
    }
    if (key == "multipleOf") {
      return x.IsNumber() && x.GetDouble() > 0 ? true : Fail(at, "must be a number above 0");
    }
    if (key == "minLength" || key == "maxLength" || key == "minItems" || key == "maxItems" ||
        key == "minProperties" || key == "maxProperties") {
      return IsCount(x) ? true : Fail(at, "must be a whole number, 0 or more");
    }
    if (key == "pattern" || key == "format" || key == "description" || key == "title" ||
        key == "$ref" || key == "$schema" || key == "$id") {
      return x.IsString() ? true : Fail(at, "must be a string");
    }
    if (key == "uniqueItems") return x.IsBool() ? true : Fail(at, "must be true or false");
    return true;  // a keyword keel does not know: ignored, as JSON Schema says
  }

  bool SchemaList(const Value& x, const std::string& at, bool non_empty) {
    if (!x.IsArray() || (non_empty && x.Empty())) {
      return Fail(at,
                  non_empty ? "must be a non-empty list of schemas" : "must be a list of schemas");
    }
    for (rapidjson::SizeType i = 0; i < x.Size(); ++i) {
      if (!Schema(x[i], at + "[" + std::to_string(i + 1) + "]")) return false;
    }
    return true;
  }

  static std::string Join(const std::string& at, const std::string& key) {
    return at.empty() ? key : at + "." + key;
  }

  bool Fail(const std::string& at, const std::string& what) {
    problem = at.empty() ? what : "at " + at + ": " + what;
    return false;
  }

  static constexpr const char* kTypeExpected =
      "must be a type name (string, number, integer, boolean, object, array, null) or a list "
      "of them";
};

}  // namespace

std::string SchemaProblem(const std::string& schema_json) {
  JsonDocument doc;
  doc.Parse(schema_json.c_str(), schema_json.size());
  if (doc.HasParseError()) return "not valid JSON: " + wire::ParseErrorText(doc);
  SchemaWalker walker;
  walker.Schema(doc, "");
  return walker.problem;
}

}  // namespace keel
