#include "views/json_out.h"

#include <rapidjson/document.h>

#include <algorithm>
#include <cmath>

#include "engine/utf8.h"
#include "views/format.h"

namespace keel {

JsonOut& JsonOut::Key(std::string_view key) {
  if (IsUtf8(key)) {
    writer_.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
  } else {
    std::string valid = ReplaceInvalidUtf8(key);
    writer_.Key(valid.data(), static_cast<rapidjson::SizeType>(valid.size()));
  }
  return *this;
}

void JsonOut::String(std::string_view value) {
  if (IsUtf8(value)) {
    writer_.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
  } else {
    std::string valid = ReplaceInvalidUtf8(value);
    writer_.String(valid.data(), static_cast<rapidjson::SizeType>(valid.size()));
  }
}

void JsonOut::StringOrNull(std::string_view value) {
  if (value.empty()) {
    writer_.Null();
  } else {
    String(value);
  }
}

void JsonOut::Double(double value) {
  if (std::isfinite(value)) {
    writer_.Double(value);
  } else {
    writer_.Null();
  }
}

void JsonOut::Seconds(std::optional<double> value) {
  if (!value || !std::isfinite(*value)) {
    writer_.Null();
    return;
  }
  double rounded = std::round(std::max(*value, 0.0) * 1000) / 1000;
  Double(rounded);  // null when rounding overflowed
}

void JsonOut::TimeOrNull(double wall) {
  if (wall > 0) {
    String(FormatIsoUtc(wall));
  } else {
    writer_.Null();
  }
}

void JsonOut::Raw(const std::optional<std::string>& json) {
  if (!json || json->empty()) {
    writer_.Null();
    return;
  }
  rapidjson::Document check;
  check.Parse<rapidjson::kParseValidateEncodingFlag>(json->data(), json->size());
  if (check.HasParseError()) {
    String(*json);
    return;
  }
  // The kind passed only guides the writer's bookkeeping; any value kind
  // behaves the same inside an object or array.
  writer_.RawValue(json->data(), json->size(), rapidjson::kObjectType);
}

void JsonOut::Print(std::FILE* out) const { std::fprintf(out, "%s\n", buffer_.GetString()); }

}  // namespace keel
