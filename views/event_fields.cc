#include "views/event_fields.h"

#include <rapidjson/document.h>

namespace keel {
namespace {

const rapidjson::Value* Member(const rapidjson::Document& doc, const char* name) {
  if (doc.HasParseError() || !doc.IsObject()) return nullptr;
  auto it = doc.FindMember(name);
  return it == doc.MemberEnd() ? nullptr : &it->value;
}

}  // namespace

std::optional<double> NumberField(const std::string& json, const char* name) {
  rapidjson::Document doc;
  doc.Parse(json.c_str(), json.size());
  const rapidjson::Value* value = Member(doc, name);
  if (value == nullptr || !value->IsNumber()) return std::nullopt;
  return value->GetDouble();
}

std::string StringField(const std::string& json, const char* name) {
  rapidjson::Document doc;
  doc.Parse(json.c_str(), json.size());
  const rapidjson::Value* value = Member(doc, name);
  if (value == nullptr || !value->IsString()) return "";
  return std::string(value->GetString(), value->GetStringLength());
}

}  // namespace keel
