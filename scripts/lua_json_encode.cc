// Lua -> JSON (LuaToJson of lua_json.h): a depth-first walk of a Lua value
// that feeds a RapidJSON writer and names the path to a value that cannot be
// JSON.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "engine/utf8.h"
#include "lua.hpp"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"
#include "scripts/lua_json.h"
#include "scripts/lua_json_scratch.h"

namespace keel {
namespace {

// Strings are checked with IsUtf8 before they are written.
using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

bool IsIdentifier(std::string_view s) {
  if (s.empty() || !(isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

// Walks a Lua value depth-first, feeding a RapidJSON writer. On failure the
// path to the bad value is collected while the recursion unwinds, so the
// success path pays nothing for it.
class Encoder {
 public:
  Encoder() : writer_(buffer_) {}

  // Prepares one encoding of a value of L, keeping the buffers' capacity.
  void Reset(lua_State* L) {
    L_ = L;
    PushArrayMarker(L);
    array_marker_ = lua_topointer(L, -1);
    PushObjectMarker(L);
    object_marker_ = lua_topointer(L, -1);
    lua_pop(L, 2);
    buffer_.Clear();
    writer_.Reset(buffer_);
    ancestors_.clear();
    keys_.clear();
    key_bytes_.clear();
    error_.clear();
    reversed_path_.clear();
  }

  // Gives back the memory a big value made the output buffer grow to.
  void Trim() {
    constexpr size_t kKeepBytes = 64 << 10;
    if (buffer_.GetSize() > kKeepBytes) {
      buffer_.Clear();
      buffer_.ShrinkToFit();
    }
    if (key_bytes_.capacity() > kKeepBytes) std::string().swap(key_bytes_);
  }

  bool Encode(int index, int depth) {
    switch (lua_type(L_, index)) {
      case LUA_TNIL:
        return writer_.Null();
      case LUA_TBOOLEAN:
        return writer_.Bool(lua_toboolean(L_, index) != 0);
      case LUA_TNUMBER:
        return EncodeNumber(index);
      case LUA_TSTRING: {
        size_t len = 0;
        const char* s = lua_tolstring(L_, index, &len);
        if (len > std::numeric_limits<rapidjson::SizeType>::max()) {
          return Fail("a string longer than 4 GiB cannot be JSON");
        }
        // Checked here, not by the writer: RapidJSON's validation reads up to
        // three bytes past a string that ends inside a UTF-8 sequence.
        if (!IsUtf8(std::string_view(s, len))) {
          return Fail("a string that is not valid UTF-8 cannot be JSON");
        }
        return writer_.String(s, static_cast<rapidjson::SizeType>(len));
      }
      case LUA_TLIGHTUSERDATA:
        if (IsJsonNull(L_, index)) return writer_.Null();
        return Fail("a userdata cannot be JSON");
      case LUA_TTABLE:
        return EncodeTable(index, depth + 1);
      default:
        return Fail(std::string("a ") + luaL_typename(L_, index) + " cannot be JSON");
    }
  }

  const char* text() const { return buffer_.GetString(); }
  size_t size() const { return buffer_.GetSize(); }

  // "at .items[3].f: a function cannot be JSON".
  std::string ErrorMessage() const {
    if (reversed_path_.empty()) return error_;
    std::string path;
    for (auto it = reversed_path_.rbegin(); it != reversed_path_.rend(); ++it) path += *it;
    return "at " + path + ": " + error_;
  }

 private:
  enum class Shape { kArray, kObject };

  bool Fail(std::string message) {
    error_ = std::move(message);
    return false;
  }

  bool EncodeNumber(int index) {
    if (lua_isinteger(L_, index)) return writer_.Int64(lua_tointeger(L_, index));
    double d = lua_tonumber(L_, index);
    if (std::isnan(d)) return Fail("NaN cannot be JSON");
    if (std::isinf(d)) return Fail("an infinite number cannot be JSON");
    return writer_.Double(d);
  }

  std::string KeyText(int index) {
    if (lua_type(L_, index) == LUA_TSTRING) return std::string("'") + lua_tostring(L_, index) + "'";
    if (lua_isinteger(L_, index)) return std::to_string(lua_tointeger(L_, index));
    if (lua_type(L_, index) == LUA_TNUMBER) {
      char number[32];
      snprintf(number, sizeof(number), "%.17g", lua_tonumber(L_, index));
      return number;
    }
    return std::string("of type ") + luaL_typename(L_, index);
  }

  // Decides whether the table at `index` is an array (returns its length in
  // *n) or an object (its keys appended to keys_), or fails.
  bool Classify(int index, Shape* shape, lua_Integer* n) {
    const void* marker = nullptr;
    if (lua_getmetatable(L_, index)) {
      marker = lua_topointer(L_, -1);
      lua_pop(L_, 1);
    }
    lua_Integer count = 0, int_keys = 0, max_key = 0;
    bool bad_int = false;
    std::string first_int_key, first_string_key;
    lua_pushnil(L_);
    while (lua_next(L_, index) != 0) {
      lua_pop(L_, 1);
      ++count;
      if (lua_type(L_, -1) == LUA_TSTRING) {
        size_t len = 0;
        const char* key = lua_tolstring(L_, -1, &len);
        keys_.push_back({key_bytes_.size(), len});
        key_bytes_.append(key, len);
        if (first_string_key.empty()) first_string_key = KeyText(-1);
      } else if (lua_isinteger(L_, -1)) {
        lua_Integer k = lua_tointeger(L_, -1);
        ++int_keys;
        if (k < 1) bad_int = true;
        max_key = std::max(max_key, k);
        if (first_int_key.empty()) first_int_key = KeyText(-1);
      } else {
        std::string message = "a table key " + KeyText(-1) + " cannot be JSON";
        lua_pop(L_, 1);
        return Fail(std::move(message));
      }
    }
    lua_Integer string_keys = count - int_keys;
    if (marker == array_marker_) {
      if (string_keys > 0) return Fail("an array (keel.array) cannot have key " + first_string_key);
    } else if (marker == object_marker_) {
      if (int_keys > 0) return Fail("an object (keel.object) cannot have key " + first_int_key);
      *shape = Shape::kObject;
      return true;
    } else if (count == 0 || string_keys == count) {
      *shape = Shape::kObject;
      return true;
    } else if (string_keys > 0) {
      return Fail("a table with both list items and named keys (" + first_string_key +
                  ") cannot be JSON");
    }
    if (bad_int || max_key != int_keys) {
      return Fail("a list with holes (keys must be 1.." + std::to_string(int_keys) +
                  ") cannot be JSON");
    }
    *shape = Shape::kArray;
    *n = int_keys;
    return true;
  }

  bool EncodeTable(int index, int depth) {
    if (depth > kMaxJsonDepth) {
      return Fail("nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    }
    const void* self = lua_topointer(L_, index);
    if (std::find(ancestors_.begin(), ancestors_.end(), self) != ancestors_.end()) {
      return Fail("a table that contains itself cannot be JSON");
    }
    if (!lua_checkstack(L_, 4)) return Fail("nested too deeply for the Lua stack");
    size_t keys_begin = keys_.size();
    size_t bytes_begin = key_bytes_.size();
    Shape shape = Shape::kObject;
    lua_Integer n = 0;
    if (!Classify(index, &shape, &n)) return false;
    ancestors_.push_back(self);
    bool ok = shape == Shape::kArray ? EncodeArray(index, n, depth)
                                     : EncodeObject(index, keys_begin, depth);
    ancestors_.pop_back();
    keys_.resize(keys_begin);
    key_bytes_.resize(bytes_begin);
    return ok;
  }

  bool EncodeArray(int index, lua_Integer n, int depth) {
    writer_.StartArray();
    for (lua_Integer i = 1; i <= n; ++i) {
      lua_rawgeti(L_, index, i);
      bool ok = Encode(lua_gettop(L_), depth);
      lua_pop(L_, 1);
      if (!ok) {
        reversed_path_.push_back("[" + std::to_string(i) + "]");
        return false;
      }
    }
    return writer_.EndArray();
  }

  bool EncodeObject(int index, size_t keys_begin, int depth) {
    std::sort(keys_.begin() + keys_begin, keys_.end(),
              [this](const KeyRef& a, const KeyRef& b) { return KeyOf(a) < KeyOf(b); });
    writer_.StartObject();
    // Nested tables append to and truncate keys_ and key_bytes_ past this
    // object's, so indices (not iterators or views) stay valid across Encode.
    size_t keys_end = keys_.size();
    for (size_t i = keys_begin; i < keys_end; ++i) {
      std::string_view key = KeyOf(keys_[i]);
      if (!IsUtf8(key)) return Fail("a key that is not valid UTF-8 cannot be JSON");
      writer_.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
      lua_pushlstring(L_, key.data(), key.size());
      lua_rawget(L_, index);
      bool ok = Encode(lua_gettop(L_), depth);
      lua_pop(L_, 1);
      if (!ok) {
        std::string name(KeyOf(keys_[i]));
        reversed_path_.push_back(IsIdentifier(name) ? "." + name : "[\"" + name + "\"]");
        return false;
      }
    }
    return writer_.EndObject();
  }

  lua_State* L_ = nullptr;
  rapidjson::StringBuffer buffer_;
  JsonWriter writer_;
  const void* array_marker_ = nullptr;
  const void* object_marker_ = nullptr;
  // Tables on the path from the root to the current one, to detect cycles.
  std::vector<const void*> ancestors_;
  // Keys of the objects being written, innermost last, as places in
  // key_bytes_. They are copies: a __gc finalizer run by an allocation while
  // encoding may remove a key from its table and let Lua free the string.
  struct KeyRef {
    size_t offset;
    size_t size;
  };
  std::string_view KeyOf(const KeyRef& ref) const {
    return std::string_view(key_bytes_).substr(ref.offset, ref.size);
  }
  std::vector<KeyRef> keys_;
  std::string key_bytes_;
  std::string error_;
  std::vector<std::string> reversed_path_;
};

}  // namespace

Status LuaToJson(lua_State* L, int index, std::string* out) {
  int top = lua_gettop(L);
  index = lua_absindex(L, index);
  lua_json_detail::Scratch<Encoder> encoder;
  encoder->Reset(L);
  bool ok = encoder->Encode(index, 0);
  lua_settop(L, top);
  if (!ok) return Status::Error(ErrorKind::kPermanent, encoder->ErrorMessage());
  out->append(encoder->text(), encoder->size());
  encoder->Trim();
  return Status::Ok();
}

}  // namespace keel
