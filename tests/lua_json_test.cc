#include "scripts/lua_json.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "lua.hpp"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"
#include "scripts/keel_module.h"

namespace {

using keel::LuaToJson;
using keel::PushJson;
using keel::Status;

// A plain state with the standard libraries and a global `keel`.
struct LuaFixture {
  LuaFixture() : L(luaL_newstate()) {
    luaL_openlibs(L);
    keel::InstallKeelModule(L, nullptr);
    REQUIRE(luaL_dostring(L, "keel = require 'keel'") == LUA_OK);
  }
  ~LuaFixture() { lua_close(L); }

  // Evaluates `expression` and pushes its value.
  void Eval(const std::string& expression) {
    std::string chunk = "return " + expression;
    REQUIRE_MESSAGE(luaL_dostring(L, chunk.c_str()) == LUA_OK, lua_tostring(L, -1));
  }

  // The JSON of `expression`, or "error: MESSAGE".
  std::string Encode(const std::string& expression) {
    Eval(expression);
    int top = lua_gettop(L);
    std::string out;
    Status status = LuaToJson(L, -1, &out);
    CHECK(lua_gettop(L) == top);
    lua_pop(L, 1);
    return status.ok() ? out : "error: " + status.message();
  }

  // Decodes `json` and encodes the result again.
  std::string RoundTrip(const std::string& json) {
    Status status = PushJson(L, json);
    if (!status.ok()) return "error: " + status.message();
    std::string out;
    status = LuaToJson(L, -1, &out);
    lua_pop(L, 1);
    return status.ok() ? out : "error: " + status.message();
  }

  // Runs a Lua predicate over the value decoded from `json` (bound to `v`).
  bool Check(const std::string& json, const std::string& predicate) {
    REQUIRE(PushJson(L, json).ok());
    lua_setglobal(L, "v");
    Eval(predicate);
    bool result = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return result;
  }

  lua_State* L;
};

TEST_CASE("numbers keep their integer or float subtype") {
  LuaFixture lua;
  CHECK(lua.Encode("1") == "1");
  CHECK(lua.Encode("1.0") == "1.0");
  CHECK(lua.Encode("-0.0") == "-0.0");
  CHECK(lua.Encode("0.1") == "0.1");
  CHECK(lua.Encode("1e300") == "1e300");
  CHECK(lua.Encode("math.maxinteger") == "9223372036854775807");
  CHECK(lua.Encode("math.mininteger") == "-9223372036854775808");
  CHECK(lua.Check("1", "math.type(v) == 'integer' and v == 1"));
  CHECK(lua.Check("1.0", "math.type(v) == 'float' and v == 1"));
  CHECK(lua.Check("-9223372036854775808", "v == math.mininteger"));
  CHECK(lua.Check("9223372036854775807", "v == math.maxinteger"));
  CHECK(lua.Check("9223372036854775808", "math.type(v) == 'float' and v == 2^63"));
  CHECK(lua.Check("18446744073709551615", "math.type(v) == 'float'"));
  CHECK(lua.RoundTrip("[1e-7,2.5,123456789012345678901234567890]") ==
        "[1e-7,2.5,1.2345678901234568e29]");
}

TEST_CASE("tables become arrays or objects; markers keep empty ones apart") {
  LuaFixture lua;
  CHECK(lua.Encode("{}") == "{}");
  CHECK(lua.Encode("keel.array{}") == "[]");
  CHECK(lua.Encode("keel.array()") == "[]");
  CHECK(lua.Encode("keel.object{}") == "{}");
  CHECK(lua.Encode("{1, 'two', true}") == "[1,\"two\",true]");
  CHECK(lua.Encode("{b = 1, a = {c = 2}, ['x y'] = 3}") == "{\"a\":{\"c\":2},\"b\":1,\"x y\":3}");
  CHECK(lua.Encode("{1, keel.null, 3}") == "[1,null,3]");
  CHECK(lua.Encode("{a = keel.null}") == "{\"a\":null}");
  CHECK(lua.Encode("nil") == "null");
  CHECK(lua.RoundTrip("[]") == "[]");
  CHECK(lua.RoundTrip("{}") == "{}");
  CHECK(lua.RoundTrip("[[],{},[[]]]") == "[[],{},[[]]]");
  CHECK(lua.RoundTrip("null") == "null");
  CHECK(lua.Check("[1,null,3]", "v[2] == keel.null and #v == 3"));
  CHECK(lua.Check("{\"a\":null}", "v.a == keel.null"));
  CHECK(lua.Check("null", "v == nil"));
  CHECK(lua.Check("[]", "getmetatable(v) == getmetatable(keel.array{})"));
  // A table shared by two branches (not a cycle) is written twice.
  CHECK(lua.Encode("(function() local s = {1} return {a = s, b = s} end)()") ==
        "{\"a\":[1],\"b\":[1]}");
}

TEST_CASE("strings: escapes, embedded NULs and multibyte UTF-8 survive") {
  LuaFixture lua;
  CHECK(lua.Encode("'a\\0b'") == "\"a\\u0000b\"");
  CHECK(lua.Encode("'q\"\\\\\\n\\t'") == "\"q\\\"\\\\\\n\\t\"");
  CHECK(lua.Encode("'h\\u{e9}llo \\u{1F600}'") == "\"h\u00e9llo \U0001F600\"");
  CHECK(lua.Check("\"a\\u0000b\"", "#v == 3 and v:byte(2) == 0"));
  CHECK(lua.Check("\"\\ud83d\\ude00\"", "v == '\\u{1F600}'"));
}

TEST_CASE("values that cannot be JSON are reported with their path") {
  LuaFixture lua;
  CHECK(lua.Encode("{items = {1, 2, {f = print}}}") ==
        "error: at .items[3].f: a function cannot be JSON");
  CHECK(lua.Encode("print") == "error: a function cannot be JSON");
  CHECK(lua.Encode("{io.stdout}") == "error: at [1]: a userdata cannot be JSON");
  CHECK(lua.Encode("{co = coroutine.create(print)}") == "error: at .co: a thread cannot be JSON");
  CHECK(lua.Encode("(function() local t = {} t.self = {t} return t end)()") ==
        "error: at .self[1]: a table that contains itself cannot be JSON");
  CHECK(lua.Encode("{x = 0/0}") == "error: at .x: NaN cannot be JSON");
  CHECK(lua.Encode("{-math.huge}") == "error: at [1]: an infinite number cannot be JSON");
  CHECK(lua.Encode("{1, 2, a = 3}") ==
        "error: a table with both list items and named keys ('a') cannot be JSON");
  CHECK(lua.Encode("{[1] = 1, [3] = 3}") ==
        "error: a list with holes (keys must be 1..2) cannot be JSON");
  CHECK(lua.Encode("{[0] = 1}") == "error: a list with holes (keys must be 1..1) cannot be JSON");
  CHECK(lua.Encode("{[1.5] = 1}") == "error: a table key 1.5 cannot be JSON");
  CHECK(lua.Encode("{[true] = 1}") == "error: a table key of type boolean cannot be JSON");
  CHECK(lua.Encode("{['a b'] = {'\\xff'}}") ==
        "error: at [\"a b\"][1]: a string that is not valid UTF-8 cannot be JSON");
  CHECK(lua.Encode("{['\\xff'] = 1}") == "error: a key that is not valid UTF-8 cannot be JSON");
  // Cut inside a UTF-8 sequence (text:sub(1, n) of a reply): refused without
  // reading past the string's end (RapidJSON's own check read up to 3 bytes on).
  CHECK(lua.Encode("{('caf\\xC3\\xA9'):sub(1, 4)}") ==
        "error: at [1]: a string that is not valid UTF-8 cannot be JSON");
  CHECK(lua.Encode("{['\\xF0\\x9F'] = 1}") ==
        "error: a key that is not valid UTF-8 cannot be JSON");
  CHECK(lua.Encode("'\\xED\\xA0\\x80'") ==
        "error: a string that is not valid UTF-8 cannot be JSON");
  CHECK(lua.Encode("keel.array{1, x = 2}") == "error: an array (keel.array) cannot have key 'x'");
  CHECK(lua.Encode("keel.object{1}") == "error: an object (keel.object) cannot have key 1");
}

TEST_CASE("nesting is capped at 200 levels both ways") {
  LuaFixture lua;
  auto nested = [](int depth) {
    return "(function() local t = {} for i = 2, " + std::to_string(depth) +
           " do t = {t} end return t end)()";
  };
  CHECK(lua.Encode(nested(200)).rfind("[[[", 0) == 0);
  CHECK(lua.Encode(nested(201)).find("nested deeper than 200 levels") != std::string::npos);
  std::string deep_ok = std::string(200, '[') + std::string(200, ']');
  CHECK(lua.RoundTrip(deep_ok) == deep_ok);
  std::string too_deep = std::string(201, '[') + std::string(201, ']');
  CHECK(lua.RoundTrip(too_deep) ==
        "error: invalid JSON at offset 200: nested deeper than 200 levels");
}

TEST_CASE("invalid JSON text is rejected with its offset and leaves the stack alone") {
  LuaFixture lua;
  int top = lua_gettop(lua.L);
  CHECK(lua.RoundTrip("[1,2").rfind("error: invalid JSON at offset 4:", 0) == 0);
  CHECK(lua.RoundTrip("1 2").rfind("error: invalid JSON at offset 2:", 0) == 0);
  CHECK(lua.RoundTrip("NaN").rfind("error: invalid JSON", 0) == 0);
  CHECK(lua.RoundTrip("\"\xff\"").rfind("error: invalid JSON", 0) == 0);
  CHECK(lua.RoundTrip("").rfind("error: invalid JSON at offset 0:", 0) == 0);
  CHECK(lua.RoundTrip(std::string("[1]\0x", 5)).rfind("error: invalid JSON at offset 3:", 0) == 0);
  CHECK(lua.RoundTrip(R"(["\udc00"])") ==
        "error: invalid JSON at offset 9: a \\u escape that is not valid UTF-8 (a lone surrogate)");
  CHECK(lua.RoundTrip(R"({"\ud800":1})").rfind("error: invalid JSON", 0) == 0);
  CHECK(lua.RoundTrip("[0e89, -0e89, 0.0e300, 1e-400]") == "[0.0,-0.0,0.0,0.0]");
  CHECK(lua.RoundTrip("[421e308]") ==
        "error: invalid JSON at offset 1: Number too big to be stored in double");
  CHECK(lua_gettop(lua.L) == top);
}

TEST_CASE("keel.json.encode and decode raise Lua errors naming the problem") {
  LuaFixture lua;
  CHECK(luaL_dostring(lua.L, "return keel.json.encode({a = {1, print}})") != LUA_OK);
  CHECK(std::string(lua_tostring(lua.L, -1)).find("keel.json.encode: at .a[2]: a function") !=
        std::string::npos);
  lua_pop(lua.L, 1);
  CHECK(luaL_dostring(lua.L, "return keel.json.decode('[1,')") != LUA_OK);
  CHECK(std::string(lua_tostring(lua.L, -1)).find("keel.json.decode: invalid JSON") !=
        std::string::npos);
  lua_pop(lua.L, 1);
  CHECK(lua.Encode("keel.json.decode(keel.json.encode({x = {1.0, 2}}))") == "{\"x\":[1.0,2]}");
}

TEST_CASE("conversions stay correct when a __gc finalizer converts JSON mid-way") {
  LuaFixture lua;
  // With the collector running all the time, finalizers run inside the
  // allocations that encoding and decoding make, and convert JSON themselves.
  CHECK(lua.Encode(R"((function()
    collectgarbage("incremental", 1, 1000)
    local seen = 0
    local mt = { __gc = function()
      local back = keel.json.decode(keel.json.encode({ 1, { a = "x" } }))
      if back[2].a == "x" then seen = seen + 1 end
    end }
    local text = keel.json.encode((function()
      local t = {} for i = 1, 200 do t[i] = { k = string.rep("v", i) } end return t end)())
    for round = 1, 50 do
      for _ = 1, 50 do setmetatable({}, mt) end
      local again = keel.json.encode(keel.json.decode(text))
      if again ~= text then error("round " .. round .. " differs") end
    end
    collectgarbage()
    collectgarbage("incremental", 200, 100)
    return seen > 0
  end)())") == "true");
}

TEST_CASE("encoding an object survives a __gc finalizer that empties it mid-way") {
  LuaFixture lua;
  // The finalizers run inside the allocations encoding makes, after the
  // object's keys were listed: each key must still be readable (the keys
  // are long strings, collectable once the table no longer holds them).
  for (int round = 0; round < 20; ++round) {
    lua.Eval(R"((function()
      collectgarbage("incremental", 1, 1000)
      local t = {}
      for i = 1, 300 do t[string.format("key%04d", i) .. string.rep("x", 60)] = i end
      local armed, mt = false, {}
      mt.__gc = function()
        if armed then
          for k in pairs(t) do t[k] = nil end
        else
          setmetatable({}, mt)  -- keep garbage with a finalizer around until armed
        end
      end
      for _ = 1, 200 do setmetatable({}, mt) end
      armed = true  -- nothing allocates from here until LuaToJson
      return t
    end)())");
    std::string json;
    Status status = LuaToJson(lua.L, -1, &json);
    lua_pop(lua.L, 1);
    REQUIRE(luaL_dostring(lua.L, "collectgarbage('incremental', 200, 100)") == LUA_OK);
    REQUIRE_MESSAGE(status.ok(), status.message());
    // Every key once, in order, whatever the finalizers left of the values.
    size_t at = 0;
    for (int i = 1; i <= 300; ++i) {
      char key[16];
      snprintf(key, sizeof(key), "\"key%04d", i);
      at = json.find(key, at);
      REQUIRE_MESSAGE(at != std::string::npos, key << " missing in " << json.substr(0, 200));
    }
  }
}

// ---- Property tests -------------------------------------------------------

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

class JsonGenerator {
 public:
  explicit JsonGenerator(uint32_t seed) : rng_(seed) {}

  // Writes one random value in canonical form: sorted unique keys, the
  // writer's own number formatting.
  void Value(Writer* w, int depth) {
    int pick = Pick(depth < 6 ? 9 : 6);
    switch (pick) {
      case 0:
        w->Null();
        break;
      case 1:
        w->Bool(Pick(2) == 1);
        break;
      case 2:
        w->Int64(Integer());
        break;
      case 3:
        w->Double(Float());
        break;
      case 4:
      case 5: {
        std::string s = String();
        w->String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
        break;
      }
      case 6:
      case 7: {
        w->StartArray();
        for (int i = Pick(5); i > 0; --i) Value(w, depth + 1);
        w->EndArray();
        break;
      }
      default: {
        std::vector<std::string> keys;
        for (int i = Pick(5); i > 0; --i) keys.push_back(String());
        std::sort(keys.begin(), keys.end());
        keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
        w->StartObject();
        for (const std::string& key : keys) {
          w->Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
          Value(w, depth + 1);
        }
        w->EndObject();
      }
    }
  }

 private:
  int Pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }

  int64_t Integer() {
    static const int64_t kSpecial[] = {0,
                                       1,
                                       -1,
                                       42,
                                       std::numeric_limits<int64_t>::max(),
                                       std::numeric_limits<int64_t>::min(),
                                       1LL << 53,
                                       (1LL << 53) + 1,
                                       4294967296LL,
                                       -2147483649LL};
    if (Pick(3) == 0) return kSpecial[Pick(std::size(kSpecial))];
    return static_cast<int64_t>(rng_()) >> Pick(64);
  }

  double Float() {
    static const double kSpecial[] = {1.0,
                                      0.1,
                                      -0.0,
                                      0.0,
                                      1e300,
                                      -1e-300,
                                      5e-324,
                                      2.5,
                                      1e21,
                                      123456789.125,
                                      std::numeric_limits<double>::max()};
    if (Pick(2) == 0) return kSpecial[Pick(std::size(kSpecial))];
    for (;;) {
      uint64_t bits = rng_();
      double d;
      memcpy(&d, &bits, sizeof(d));
      if (std::isfinite(d)) return d;
    }
  }

  std::string String() {
    static const char* kPieces[] = {"a",
                                    "key",
                                    " ",
                                    "\"",
                                    "\\",
                                    "/",
                                    "\n",
                                    "\t",
                                    "\x01",
                                    "" /* NUL, added below */,
                                    "\xc3\xa9",
                                    "\xe2\x82\xac",
                                    "\xf0\x9f\x98\x80",
                                    "\x7f",
                                    "z9_"};
    std::string s;
    for (int i = Pick(6); i > 0; --i) {
      int piece = Pick(std::size(kPieces));
      if (piece == 9) {
        s.push_back('\0');
      } else {
        s += kPieces[piece];
      }
    }
    return s;
  }

  std::mt19937_64 rng_;
};

TEST_CASE("property: JSON -> Lua -> JSON gives back the canonical text") {
  LuaFixture lua;
  JsonGenerator generator(20240611);
  int nested = 0, with_nul = 0, with_float = 0;
  for (int i = 0; i < 5000; ++i) {
    rapidjson::StringBuffer buffer;
    Writer writer(buffer);
    generator.Value(&writer, 0);
    std::string json(buffer.GetString(), buffer.GetSize());
    std::string back = lua.RoundTrip(json);
    REQUIRE_MESSAGE(back == json, "case " << i);
    nested += json.find("[{") != std::string::npos || json.find(":[") != std::string::npos;
    with_nul += json.find("\\u0000") != std::string::npos;
    with_float += json.find(".0") != std::string::npos;
  }
  CHECK(lua_gettop(lua.L) == 0);
  // The generator really covers the interesting shapes.
  CHECK(nested > 300);
  CHECK(with_nul > 100);
  CHECK(with_float > 200);
}

// Lua-side generator and deep-equality: random Lua values -> JSON -> Lua.
constexpr const char* kLuaProperty = R"(
local seed = ...
local rng = { state = seed }
local function pick(n)  -- a small LCG keeps the test independent of math.random
  rng.state = (rng.state * 6364136223846793005 + 1442695040888963407)
  return ((rng.state >> 33) % n) + 1
end
local strings = { "", "a", "é", "€", "😀", "x\0y", "\"q\"", "\\", "line\n" }
local floats = { 1.0, 0.1, -0.0, 1e300, 2.5, -7.0, 1/3 }
local ints = { 0, 1, -1, math.maxinteger, math.mininteger, 1 << 53 }
local function gen(depth)
  local k = pick(depth < 5 and 8 or 5)
  if k == 1 then return pick(2) == 1
  elseif k == 2 then return ints[pick(#ints)]
  elseif k == 3 then return floats[pick(#floats)]
  elseif k == 4 then return strings[pick(#strings)]
  elseif k == 5 then return keel.null
  elseif k == 6 then
    local t = pick(3) == 1 and keel.array{} or {}
    for i = 1, pick(4) - 1 do t[i] = gen(depth + 1) end
    if next(t) == nil then setmetatable(t, getmetatable(keel.array{})) end
    return t
  else
    local t = pick(3) == 1 and keel.object{} or {}
    for _ = 1, pick(4) - 1 do t[strings[pick(#strings)] .. pick(9)] = gen(depth + 1) end
    return t
  end
end
local function same(a, b)
  if type(a) ~= type(b) then return false end
  if type(a) == "number" then
    if math.type(a) ~= math.type(b) then return false end
    return a == b and (a ~= 0 or 1/a == 1/b)
  end
  if type(a) ~= "table" then return a == b end
  local array = getmetatable(keel.array{})
  if next(a) == nil and (getmetatable(a) == array) ~= (getmetatable(b) == array) then
    return false
  end
  for k, v in pairs(a) do if not same(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end
for i = 1, 3000 do
  local v = gen(0)
  local text = keel.json.encode(v)
  local back = keel.json.decode(text)
  if v == keel.null then v = nil end  -- top-level null decodes to nil
  if not same(v, back) then error("case " .. i .. ": " .. text) end
  if keel.json.encode(back) ~= text then error("case " .. i .. " re-encodes differently") end
end
return true
)";

TEST_CASE("property: Lua -> JSON -> Lua gives back an equal value") {
  LuaFixture lua;
  for (lua_Integer seed : {1, 2, 3}) {
    REQUIRE(luaL_loadstring(lua.L, kLuaProperty) == LUA_OK);
    lua_pushinteger(lua.L, seed);
    int status = lua_pcall(lua.L, 1, 1, 0);
    REQUIRE_MESSAGE(status == LUA_OK, lua_tostring(lua.L, -1));
    lua_pop(lua.L, 1);
  }
}

}  // namespace
