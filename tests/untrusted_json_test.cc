// ParseUntrustedJson: depth limit without recursion, UTF-8 validation and
// the "invalid JSON at offset N: REASON" message.
#include "nodes/untrusted_json.h"

#include <doctest/doctest.h>

#include <cstdlib>
#include <string>

#include "nodes/json_document.h"
#include "nodes/wire_json.h"

namespace keel {
namespace {

std::string Nested(int depth, const std::string& inner = "1") {
  return std::string(depth, '[') + inner + std::string(depth, ']');
}

TEST_CASE("ParseUntrustedJson: values parse as Document::Parse would") {
  JsonDocument doc;
  REQUIRE(ParseUntrustedJson(R"({"a":[1,2.5,"x",null,true],"b":{"c":"caf\u00e9"}})", &doc).ok());
  CHECK(wire::Serialize(doc) == "{\"a\":[1,2.5,\"x\",null,true],\"b\":{\"c\":\"caf\xC3\xA9\"}}");
  REQUIRE(ParseUntrustedJson("\xEF\xBB\xBF{\"bom\":1}", &doc).ok());
  CHECK(doc["bom"].GetInt() == 1);
  REQUIRE(ParseUntrustedJson("  \"\xF0\x9F\x98\x80\"\n", &doc).ok());
  CHECK(doc.IsString());
}

TEST_CASE("ParseUntrustedJson: nesting up to the limit passes, deeper fails with its offset") {
  JsonDocument doc;
  CHECK(ParseUntrustedJson(Nested(kMaxJsonDepth), &doc).ok());
  CHECK(ParseUntrustedJson(std::string(kMaxJsonDepth, '[') + "{}" + std::string(kMaxJsonDepth, ']'),
                           &doc)
            .message()
            .find("nested deeper than 200 levels") != std::string::npos);
  Status deep = ParseUntrustedJson(Nested(kMaxJsonDepth + 1), &doc);
  CHECK(deep.kind() == ErrorKind::kTransient);
  CHECK(deep.message() == "invalid JSON at offset 200: nested deeper than 200 levels");
  CHECK(doc.IsNull());
}

TEST_CASE("ParseUntrustedJson: a million levels fail without overflowing the stack") {
  JsonDocument doc;
  Status deep = ParseUntrustedJson(R"({"deep":)" + Nested(1000000) + "}", &doc);
  CHECK(deep.message().find("nested deeper than 200 levels") != std::string::npos);
  Status open = ParseUntrustedJson(std::string(1000000, '['), &doc);
  CHECK(!open.ok());
}

TEST_CASE("ParseUntrustedJson: strings must be valid UTF-8") {
  JsonDocument doc;
  Status latin1 = ParseUntrustedJson("{\"t\":\"caf\xE9 \xFF\xFE\"}", &doc);
  CHECK(latin1.kind() == ErrorKind::kTransient);
  CHECK(latin1.message() == "invalid JSON at offset 9: Invalid encoding in string");
  CHECK(!ParseUntrustedJson("\"\xED\xA0\x80\"", &doc).ok());  // an encoded surrogate
}

TEST_CASE("ParseUntrustedJson: syntax errors name the offset and reason") {
  JsonDocument doc;
  CHECK(ParseUntrustedJson("{\"choices\": [tru", &doc).message() ==
        "invalid JSON at offset 16: Invalid value");
  CHECK(ParseUntrustedJson("", &doc).message() ==
        "invalid JSON at offset 0: The document is empty");
  CHECK(ParseUntrustedJson("{} x", &doc).message().find("offset 3") != std::string::npos);
}

TEST_CASE("ParseUntrustedJson and JsonTypeOf: a NUL byte after the value is not JSON") {
  using namespace std::string_literals;
  JsonDocument doc;
  Status nul = ParseUntrustedJson("[1,2]\0]"s, &doc);
  CHECK(nul.message() ==
        "invalid JSON at offset 5: The document root must not be followed by other values");
  CHECK(doc.IsNull());
  CHECK_FALSE(ParseUntrustedJson("{\"a\":1} \0"s, &doc).ok());
  CHECK_FALSE(wire::JsonTypeOf("{}\0junk"s).has_value());
  CHECK(wire::JsonTypeOf("{} ") == rapidjson::kObjectType);
  CHECK(ParseUntrustedJson("\"a\\u0000b\""s, &doc).ok());  // an escaped NUL inside a string is fine
}

TEST_CASE("ParseUntrustedJson: escapes of lone surrogates and numbers past a double fail") {
  JsonDocument doc;
  // RapidJSON checks the bytes of strings, not what \u escapes encode.
  CHECK(ParseUntrustedJson(R"(["a\udc00"])", &doc).message() ==
        "invalid JSON at offset 10: a \\u escape that is not valid UTF-8 (a lone surrogate)");
  CHECK_FALSE(ParseUntrustedJson(R"({"\ud83d":1})", &doc).ok());
  CHECK(ParseUntrustedJson(R"("\ud83d\ude00")", &doc).ok());  // a pair is fine
  // 1e309 is an error in RapidJSON, 421e308 was infinity.
  for (const char* big : {"421e308", "[1.8e308]", "{\"answer\": -9e308}"}) {
    CAPTURE(big);
    Status s = ParseUntrustedJson(big, &doc);
    CHECK(s.message().find("Number too big to be stored in double") != std::string::npos);
    CHECK(doc.IsNull());
  }
  CHECK(ParseUntrustedJson("1.7976931348623157e308", &doc).ok());
}

TEST_CASE("ParseUntrustedJson: numbers are read exactly, so writing and reading is stable") {
  JsonDocument doc;
  // RapidJSON's full-precision reading made 0e89 -8.25e267.
  REQUIRE(ParseUntrustedJson("[0e89, 0E+89, -0e89, 7, -7, 18446744073709551615]", &doc).ok());
  CHECK(wire::Serialize(doc) == "[0.0,0.0,-0.0,7,-7,18446744073709551615]");
  for (const char* number : {"8815101831705276415346", "18447644073709551615",
                             "1.518446744073709551616e-7", "0.1", "2.2250738585072011e-308",
                             "0e89", "-0.0e300", "1e-400"}) {
    CAPTURE(number);
    REQUIRE(ParseUntrustedJson(number, &doc).ok());
    CHECK(doc.GetDouble() == std::strtod(number, nullptr));
    std::string once = wire::Serialize(doc);
    REQUIRE(ParseUntrustedJson(once, &doc).ok());
    CHECK(wire::Serialize(doc) == once);
  }
}

TEST_CASE("ParseUntrustedJson: only a whole byte order mark is skipped") {
  JsonDocument doc;
  CHECK(ParseUntrustedJson("\xEF\xBB\xBF[1]", &doc).ok());
  CHECK(ParseUntrustedJson("\xEF\xBB\xBF[1", &doc).message() ==
        "invalid JSON at offset 5: Missing a comma or ']' after an array element");
  for (const char* partial : {"\xBF{}", "\xEF\xBF{}", "\xBB\xBF[]", "\xEF\xBB{}"}) {
    CAPTURE(partial);
    CHECK_FALSE(ParseUntrustedJson(partial, &doc).ok());
  }
}

}  // namespace
}  // namespace keel
