#pragma once
// Reading the members of a parsed JSON object (an event's data, a record)
// that may be missing or of another type, without throwing or asserting.
// Free functions over values the caller owns; any thread.

#include <rapidjson/document.h>

#include <string>
#include <string_view>

namespace keel {

// Member `name` of `object`; null when `object` is no object or lacks it.
inline const rapidjson::Value* JsonMember(const rapidjson::Value& object, const char* name) {
  if (!object.IsObject()) return nullptr;
  auto it = object.FindMember(name);
  return it == object.MemberEnd() ? nullptr : &it->value;
}

// String member `name`; "" when missing or not a string. Valid while
// `object` is.
inline std::string_view JsonString(const rapidjson::Value& object, const char* name) {
  const rapidjson::Value* value = JsonMember(object, name);
  return value && value->IsString() ? std::string_view(value->GetString(), value->GetStringLength())
                                    : std::string_view();
}

// String member `name` as a copy; "" when missing or not a string.
inline std::string JsonText(const rapidjson::Value& object, const char* name) {
  return std::string(JsonString(object, name));
}

// Number member `name`; `missing` when absent or not a number.
inline double JsonNumber(const rapidjson::Value& object, const char* name, double missing = 0) {
  const rapidjson::Value* value = JsonMember(object, name);
  return value && value->IsNumber() ? value->GetDouble() : missing;
}

// Whether member `name` is `true`.
inline bool JsonTrue(const rapidjson::Value& object, const char* name) {
  const rapidjson::Value* value = JsonMember(object, name);
  return value && value->IsBool() && value->GetBool();
}

}  // namespace keel
