#pragma once
// EventData: builds the small JSON object stored with each event.
// A value used on one thread. What it writes is always valid JSON: strings
// that are not valid UTF-8 get U+FFFD for their bad bytes, and numbers JSON
// cannot hold (inf, NaN) are written as null.

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>

#include "engine/utf8.h"

namespace keel {

class EventData {
 public:
  EventData() : writer_(buf_) { writer_.StartObject(); }
  EventData& Add(const char* key, std::string_view value) {
    writer_.Key(key);
    if (IsUtf8(value)) {
      writer_.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
    } else {
      std::string valid = ReplaceInvalidUtf8(value);
      writer_.String(valid.data(), static_cast<rapidjson::SizeType>(valid.size()));
    }
    return *this;
  }
  EventData& Add(const char* key, const char* value) { return Add(key, std::string_view(value)); }
  EventData& Add(const char* key, double value) {
    writer_.Key(key);
    if (std::isfinite(value)) {
      writer_.Double(value);
    } else {
      writer_.Null();
    }
    return *this;
  }
  EventData& Add(const char* key, int value) {
    writer_.Key(key);
    writer_.Int(value);
    return *this;
  }
  EventData& Add(const char* key, int64_t value) {
    writer_.Key(key);
    writer_.Int64(value);
    return *this;
  }
  EventData& Add(const char* key, bool value) {
    writer_.Key(key);
    writer_.Bool(value);
    return *this;
  }
  // `json` must be one valid JSON value.
  EventData& AddRaw(const char* key, std::string_view json) {
    writer_.Key(key);
    writer_.RawValue(json.data(), json.size(), rapidjson::kObjectType);
    return *this;
  }
  std::string Done() {
    writer_.EndObject();
    return std::string(buf_.GetString(), buf_.GetSize());
  }

 private:
  rapidjson::StringBuffer buf_;
  rapidjson::Writer<rapidjson::StringBuffer> writer_;
};

}  // namespace keel
