#pragma once
// Small helpers shared by the providers' wire formats: writing strings and
// embedded JSON texts with RapidJSON, reading optional fields, and the
// failures of replies that are not the expected answer. Free functions without state; any thread.

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "engine/status.h"
#include "nodes/provider.h"

namespace keel::wire {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

inline void String(Writer& w, std::string_view s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

// "<RapidJSON's message> at offset N" for a document that failed to parse.
inline std::string ParseErrorText(const rapidjson::Document& doc) {
  std::string what = rapidjson::GetParseError_En(doc.GetParseError());
  if (!what.empty() && what.back() == '.') what.pop_back();
  return what + " at offset " + std::to_string(doc.GetErrorOffset());
}

// Writes the JSON value `json`; writes `fallback` (itself JSON) when `json`
// does not parse. Callers check texts from users before building requests.
inline void Json(Writer& w, const std::string& json, const char* fallback) {
  rapidjson::Document doc;
  doc.Parse(json.c_str(), json.size());
  if (doc.HasParseError()) doc.Parse(fallback);
  doc.Accept(w);
}

// `value` as compact JSON text.
inline std::string Serialize(const rapidjson::Value& value) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  value.Accept(w);
  return std::string(buf.GetString(), buf.GetSize());
}

// Member `name` of `value` when `value` is an object that has it; else null.
inline const rapidjson::Value* Member(const rapidjson::Value& value, const char* name) {
  if (!value.IsObject()) return nullptr;
  auto it = value.FindMember(name);
  return it == value.MemberEnd() ? nullptr : &it->value;
}

inline std::string StringOr(const rapidjson::Value* v, std::string fallback = "") {
  if (v == nullptr || !v->IsString()) return fallback;
  return std::string(v->GetString(), v->GetStringLength());
}

inline int64_t IntOr(const rapidjson::Value* v, int64_t fallback = 0) {
  if (v == nullptr || !v->IsNumber()) return fallback;
  return v->IsInt64() ? v->GetInt64() : static_cast<int64_t>(v->GetDouble());
}

// `base` without a trailing '/', then `path` (which starts with '/').
inline std::string JoinUrl(std::string base, const char* path) {
  while (!base.empty() && base.back() == '/') base.pop_back();
  return base + path;
}

// The failure a response that is not a complete 2xx reply means (ok when it
// is one): its transport failure, or HttpStatusFailure naming `provider`.
inline Status NotSuccess(const HttpResponse& response, const std::string& provider,
                         double wall_now) {
  if (!response.transport.ok()) return response.transport;
  if (response.status >= 200 && response.status < 300) return Status::Ok();
  return HttpStatusFailure(response, provider, wall_now);
}

// The failure a 2xx reply that is not the expected JSON means.
inline Status Malformed(const std::string& why) {
  return Status::Error(ErrorKind::kTransient, "provider returned malformed JSON: " + why);
}

}  // namespace keel::wire
