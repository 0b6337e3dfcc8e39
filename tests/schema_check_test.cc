// SchemaProblem: which JSON Schema keywords are checked, the place each
// problem names, and what passes untouched; wire::JsonTypeOf, which the
// hot paths use to check JSON texts without a document.
#include "nodes/schema_check.h"

#include <doctest/doctest.h>

#include <string>

#include "nodes/wire_json.h"

namespace keel {
namespace {

TEST_CASE("valid schemas pass, unknown keywords included") {
  for (const char* schema : {
           R"({})",
           R"({"type":"object","properties":{"a":{"type":["string","null"]}},"required":["a"]})",
           R"({"type":"array","items":[{"type":"string"},{"type":"number","minimum":0}]})",
           R"({"prefixItems":[{"const":1}],"items":false,"minItems":1,"uniqueItems":true})",
           R"({"anyOf":[{"type":"string","pattern":"^a"},{"$ref":"#/$defs/n"}],)"
           R"("$defs":{"n":{"type":"integer","multipleOf":2}}})",
           R"({"if":{"type":"string"},"then":{"maxLength":3},"else":true})",
           R"({"exclusiveMinimum":true,"exclusiveMaximum":10,"x-vendor":[1,{"type":5}]})",
           R"({"additionalProperties":{"type":"boolean"},"propertyNames":{"maxLength":8}})",
       }) {
    CAPTURE(schema);
    CHECK(SchemaProblem(schema).empty());
  }
}

TEST_CASE("each checked keyword names its place and what it must be") {
  struct Case {
    const char* schema;
    const char* problem;
  };
  const Case cases[] = {
      {R"([])", "a schema must be a table (a JSON object)"},
      {R"({"type":"text"})",
       "at type: must be a type name (string, number, integer, boolean, object, array, null) "
       "or a list of them"},
      {R"({"type":[]})",
       "at type: must be a type name (string, number, integer, boolean, object, array, null) "
       "or a list of them"},
      {R"({"properties":[]})", "at properties: must be a table of NAME = schema"},
      {R"({"properties":{"a":{"properties":{"b":{"minLength":1.5}}}}})",
       "at properties.a.properties.b.minLength: must be a whole number, 0 or more"},
      {R"({"items":[{"type":"string"},{"type":"nope"}]})",
       "at items[2].type: must be a type name (string, number, integer, boolean, object, array, "
       "null) or a list of them"},
      {R"({"anyOf":[]})", "at anyOf: must be a non-empty list of schemas"},
      {R"({"oneOf":{}})", "at oneOf: must be a non-empty list of schemas"},
      {R"({"not":"x"})", "at not: a schema must be a table (a JSON object)"},
      {R"({"required":{}})",
       "at required: must be a list of property names (an empty table is an object here; "
       "write keel.array() for an empty list)"},
      {R"({"required":["a",1]})", "at required: must be a list of property names"},
      {R"({"enum":[]})", "at enum: must be a non-empty list of the allowed values"},
      {R"({"minimum":"1"})", "at minimum: must be a number"},
      {R"({"exclusiveMaximum":"1"})", "at exclusiveMaximum: must be a number (or true/false)"},
      {R"({"multipleOf":0})", "at multipleOf: must be a number above 0"},
      {R"({"pattern":1})", "at pattern: must be a string"},
      {R"({"uniqueItems":1})", "at uniqueItems: must be true or false"},
      {R"({"$defs":{"x":{"$ref":5}}})", "at $defs.x.$ref: must be a string"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.schema);
    CHECK(SchemaProblem(c.schema) == c.problem);
  }
}

TEST_CASE("text that is not JSON says where it breaks") {
  std::string problem = SchemaProblem(R"({"type":)");
  CHECK(problem.rfind("not valid JSON: ", 0) == 0);
  CHECK(problem.find("at offset 8") != std::string::npos);
}

TEST_CASE("JsonTypeOf checks a whole text without a document") {
  CHECK(wire::JsonTypeOf(R"([1,{"a":[]}])") == rapidjson::kArrayType);
  CHECK(wire::JsonTypeOf(R"( {"a":1} )") == rapidjson::kObjectType);
  CHECK(wire::JsonTypeOf("\"s\"") == rapidjson::kStringType);
  CHECK(wire::JsonTypeOf("-1.5e3") == rapidjson::kNumberType);
  CHECK(wire::JsonTypeOf("true") == rapidjson::kTrueType);
  CHECK(wire::JsonTypeOf("null") == rapidjson::kNullType);
  CHECK_FALSE(wire::JsonTypeOf("").has_value());
  CHECK_FALSE(wire::JsonTypeOf("[1,]").has_value());
  CHECK_FALSE(wire::JsonTypeOf("[1] [2]").has_value());
  CHECK_FALSE(wire::JsonTypeOf(R"({"a":1)").has_value());
}

TEST_CASE("ArrayItems streams an array's items into another array") {
  rapidjson::StringBuffer buf;
  wire::Writer w(buf);
  w.StartArray();
  w.String("first");
  wire::ArrayItems(w, R"([{"role":"user","content":"hi","n":[1,2.5,null,true]},[]])");
  w.EndArray();
  CHECK(std::string(buf.GetString()) ==
        R"(["first",{"role":"user","content":"hi","n":[1,2.5,null,true]},[]])");
}

}  // namespace
}  // namespace keel
