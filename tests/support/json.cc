#include "tests/support/json.h"

#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <stdexcept>

namespace keel::testing {

Json Json::Parse(const std::string& text) {
  auto doc = std::make_shared<rapidjson::Document>();
  // Without kParseStopWhenDoneFlag, anything but whitespace after the value is an error.
  doc->Parse(text.c_str(), text.size());
  if (doc->HasParseError()) {
    throw std::runtime_error("not one JSON value (" +
                             std::string(rapidjson::GetParseError_En(doc->GetParseError())) +
                             " at offset " + std::to_string(doc->GetErrorOffset()) + "): " + text);
  }
  const rapidjson::Value* root = doc.get();
  return Json(std::move(doc), root);
}

Json Json::operator[](const std::string& key) const {
  if (!IsObject()) return Json(doc_, nullptr);
  auto it = value_->FindMember(rapidjson::StringRef(key.data(), key.size()));
  return Json(doc_, it == value_->MemberEnd() ? nullptr : &it->value);
}

Json Json::operator[](size_t index) const {
  if (!IsArray() || index >= value_->Size()) return Json(doc_, nullptr);
  return Json(doc_, &(*value_)[static_cast<rapidjson::SizeType>(index)]);
}

bool Json::IsNull() const { return value_ == nullptr || value_->IsNull(); }
bool Json::IsObject() const { return value_ != nullptr && value_->IsObject(); }
bool Json::IsArray() const { return value_ != nullptr && value_->IsArray(); }
bool Json::IsString() const { return value_ != nullptr && value_->IsString(); }
bool Json::IsNumber() const { return value_ != nullptr && value_->IsNumber(); }
bool Json::IsBool() const { return value_ != nullptr && value_->IsBool(); }

std::string Json::Str() const {
  return IsString() ? std::string(value_->GetString(), value_->GetStringLength()) : "";
}
double Json::Num() const { return IsNumber() ? value_->GetDouble() : 0; }
int64_t Json::Int() const { return IsNumber() && value_->IsInt64() ? value_->GetInt64() : 0; }
bool Json::Bool() const { return IsBool() && value_->GetBool(); }

size_t Json::Size() const {
  if (IsArray()) return value_->Size();
  if (IsObject()) return value_->MemberCount();
  return 0;
}

std::string Json::Dump() const {
  if (value_ == nullptr) return "null";
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  value_->Accept(writer);
  return std::string(buffer.GetString(), buffer.GetSize());
}

}  // namespace keel::testing
