#pragma once
// JsonOut: builds the one JSON document a --json command prints, on top of
// RapidJSON's Writer. The document is always valid JSON in valid UTF-8:
// invalid bytes in keys and strings become U+FFFD, non-finite numbers null,
// and raw JSON that does not parse is written as a string.
// Not thread-safe; one document per instance.

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

namespace keel {

class JsonOut {
 public:
  JsonOut() : writer_(buffer_) {}

  void BeginObject() { writer_.StartObject(); }
  void EndObject() { writer_.EndObject(); }
  void BeginArray() { writer_.StartArray(); }
  void EndArray() { writer_.EndArray(); }
  // Returns *this, so a field reads as one line: out.Key("id").String(id).
  JsonOut& Key(std::string_view key);

  void String(std::string_view value);
  // Null when `value` is empty.
  void StringOrNull(std::string_view value);
  void Int(int64_t value) { writer_.Int64(value); }
  void Null() { writer_.Null(); }
  // Null when not finite, which JSON cannot hold.
  void Double(double value);
  // Seconds rounded to milliseconds; null when absent.
  void Seconds(std::optional<double> value);
  // Wall time as ISO 8601 UTC (FormatIsoUtc); null when not positive, which
  // the store records for a time that has not come yet.
  void TimeOrNull(double wall);
  // Already-serialized JSON, copied as it is; null when absent or empty; as
  // a string (with invalid UTF-8 replaced) when it is not one valid JSON value.
  void Raw(const std::optional<std::string>& json);

  // Prints the document and a newline to `out`.
  void Print(std::FILE* out) const;
  // The document as it is so far.
  std::string Text() const { return std::string(buffer_.GetString(), buffer_.GetSize()); }

 private:
  rapidjson::StringBuffer buffer_;
  rapidjson::Writer<rapidjson::StringBuffer> writer_;
};

}  // namespace keel
