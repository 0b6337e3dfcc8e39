#pragma once
// EventData: builds the small JSON object stored with each event.
// A value used on one thread.

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace keel {

class EventData {
 public:
  EventData() : writer_(buf_) { writer_.StartObject(); }
  EventData& Add(const char* key, std::string_view value) {
    writer_.Key(key);
    writer_.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
    return *this;
  }
  EventData& Add(const char* key, const char* value) { return Add(key, std::string_view(value)); }
  EventData& Add(const char* key, double value) {
    writer_.Key(key);
    writer_.Double(value);
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
