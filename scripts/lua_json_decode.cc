// JSON -> Lua (PushJson of lua_json.h): a RapidJSON SAX handler that builds
// the Lua value directly on the stack, with exact numbers and the markers.

#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "engine/utf8.h"
#include "lua.hpp"
#include "nodes/json_number.h"
#include "rapidjson/error/en.h"
#include "rapidjson/memorystream.h"
#include "rapidjson/reader.h"
#include "scripts/lua_json.h"
#include "scripts/lua_json_scratch.h"

namespace keel {
namespace {

// A RapidJSON SAX handler that builds the Lua value directly on the stack.
class Decoder : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, Decoder> {
 public:
  // The array marker must be at absolute stack index `marker`.
  Decoder(lua_State* L, int marker) : L_(L), marker_(marker) {}

  bool Null() {
    if (depth_ == 0) {
      lua_pushnil(L_);
    } else {
      PushJsonNull(L_);
    }
    return Attach();
  }
  bool Bool(bool b) {
    lua_pushboolean(L_, b);
    return Attach();
  }
  bool Int(int i) { return Integer(i); }
  bool Uint(unsigned u) { return Integer(u); }
  bool Int64(int64_t i) { return Integer(i); }
  bool Uint64(uint64_t u) {
    if (u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return Integer(static_cast<lua_Integer>(u));
    }
    return Double(static_cast<double>(u));
  }
  bool Double(double d) {
    // RapidJSON makes 1e999 an error but 9e308 infinity, which is no JSON value.
    if (!std::isfinite(d)) return Refuse("Number too big to be stored in double");
    lua_pushnumber(L_, d);
    return Attach();
  }
  bool RawNumber(const char* s, rapidjson::SizeType len, bool) {
    JsonNumber number = ReadJsonNumber(s, len);
    if (number.kind == JsonNumber::kInt64) return Integer(number.i);
    if (number.kind == JsonNumber::kUint64) return Uint64(number.u);
    return Double(number.d);
  }
  bool String(const char* s, rapidjson::SizeType len, bool) {
    if (!Utf8(s, len)) return false;
    lua_pushlstring(L_, s, len);
    return Attach();
  }
  bool Key(const char* s, rapidjson::SizeType len, bool) {
    if (!Utf8(s, len)) return false;
    lua_pushlstring(L_, s, len);
    return true;
  }
  bool StartObject() {
    if (!Open()) return false;
    lua_createtable(L_, 0, 0);
    frames_[depth_++] = Frame{false, 0};
    return true;
  }
  bool EndObject(rapidjson::SizeType) {
    --depth_;
    return Attach();
  }
  bool StartArray() {
    if (!Open()) return false;
    lua_createtable(L_, 0, 0);
    lua_pushvalue(L_, marker_);
    lua_setmetatable(L_, -2);
    frames_[depth_++] = Frame{true, 0};
    return true;
  }
  bool EndArray(rapidjson::SizeType) {
    --depth_;
    return Attach();
  }

  // Set when the handler, not the syntax, stopped the parse.
  const std::string& error() const { return error_; }

 private:
  struct Frame {
    bool is_array;
    lua_Integer count;
  };

  bool Integer(lua_Integer i) {
    lua_pushinteger(L_, i);
    return Attach();
  }

  // RapidJSON validates the bytes of strings, not what \u escapes encode: a
  // lone surrogate would make a string that is not UTF-8.
  bool Utf8(const char* s, rapidjson::SizeType len) {
    return IsUtf8(std::string_view(s, len)) ||
           Refuse("a \\u escape that is not valid UTF-8 (a lone surrogate)");
  }

  bool Refuse(std::string why) {
    error_ = std::move(why);
    return false;
  }

  bool Open() {
    if (depth_ >= kMaxJsonDepth) {
      error_ = "nested deeper than " + std::to_string(kMaxJsonDepth) + " levels";
      return false;
    }
    // The new table, a key and a value.
    if (!lua_checkstack(L_, 3)) {
      error_ = "nested too deeply for the Lua stack";
      return false;
    }
    return true;
  }

  // Moves the value just pushed into its container, if any.
  bool Attach() {
    if (depth_ == 0) return true;
    Frame& frame = frames_[depth_ - 1];
    if (frame.is_array) {
      lua_rawseti(L_, -2, ++frame.count);
    } else {
      lua_rawset(L_, -3);
    }
    return true;
  }

  lua_State* L_;
  int marker_;
  std::array<Frame, kMaxJsonDepth> frames_;  // the open containers, innermost last
  int depth_ = 0;
  std::string error_;
};

}  // namespace

Status PushJson(lua_State* L, std::string_view json) {
  // Numbers come as text and are read by ReadJsonNumber: RapidJSON's full
  // precision reads "0e89" as -8.25e267.
  constexpr unsigned kFlags = rapidjson::kParseNumbersAsStringsFlag |
                              rapidjson::kParseIterativeFlag |
                              rapidjson::kParseValidateEncodingFlag;
  int top = lua_gettop(L);
  if (!lua_checkstack(L, 4)) {
    return Status::Error(ErrorKind::kPermanent, "no Lua stack space to decode JSON");
  }
  PushArrayMarker(L);
  Decoder decoder(L, lua_gettop(L));
  rapidjson::MemoryStream stream(json.data(), json.size());
  lua_json_detail::Scratch<rapidjson::Reader> reader;
  rapidjson::ParseResult result = reader->Parse<kFlags>(stream, decoder);
  if (!result.IsError() && stream.Tell() < json.size()) {
    // RapidJSON takes a NUL byte for the end of the text: "1\0x" is not JSON.
    result.Set(rapidjson::kParseErrorDocumentRootNotSingular, stream.Tell());
  }
  if (result.IsError()) {
    lua_settop(L, top);
    std::string what = result.Code() == rapidjson::kParseErrorTermination
                           ? decoder.error()
                           : rapidjson::GetParseError_En(result.Code());
    return Status::Error(ErrorKind::kPermanent,
                         "invalid JSON at offset " + std::to_string(result.Offset()) + ": " + what);
  }
  lua_remove(L, top + 1);  // the marker
  return Status::Ok();
}

}  // namespace keel
