#pragma once
// Small helpers shared by the providers' wire formats: writing strings and
// embedded JSON texts with RapidJSON, reading optional fields, and the
// failures of replies that are not the expected answer. Free functions without state; any thread.

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cstdint>
#include <optional>
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

// Notes the type of the first value a Reader reports; accepts the rest.
struct FirstValueType : rapidjson::BaseReaderHandler<rapidjson::UTF8<>, FirstValueType> {
  std::optional<rapidjson::Type> type;

  bool Set(rapidjson::Type t) {
    if (!type) type = t;
    return true;
  }
  bool Null() { return Set(rapidjson::kNullType); }
  bool Bool(bool b) { return Set(b ? rapidjson::kTrueType : rapidjson::kFalseType); }
  bool Int(int) { return Set(rapidjson::kNumberType); }
  bool Uint(unsigned) { return Set(rapidjson::kNumberType); }
  bool Int64(int64_t) { return Set(rapidjson::kNumberType); }
  bool Uint64(uint64_t) { return Set(rapidjson::kNumberType); }
  bool Double(double) { return Set(rapidjson::kNumberType); }
  bool String(const char*, rapidjson::SizeType, bool) { return Set(rapidjson::kStringType); }
  bool StartObject() { return Set(rapidjson::kObjectType); }
  bool StartArray() { return Set(rapidjson::kArrayType); }
};

// The type of `json` when it is exactly one valid JSON value; nullopt
// otherwise (a NUL byte after the value too, which RapidJSON alone takes for
// the end). Checks without building a document (no allocation beyond the
// parser's small stack), so it is cheap on hot paths.
inline std::optional<rapidjson::Type> JsonTypeOf(std::string_view json) {
  rapidjson::Reader reader;
  rapidjson::MemoryStream in(json.data(), json.size());
  FirstValueType handler;
  if (!reader.Parse(in, handler) || in.Tell() < json.size()) return std::nullopt;
  return handler.type;
}

// Forwards what a Reader reports to a Writer, leaving out the outermost
// array's brackets.
class ArrayItemsFilter : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, ArrayItemsFilter> {
 public:
  explicit ArrayItemsFilter(Writer& w) : w_(w) {}
  bool Null() { return w_.Null(); }
  bool Bool(bool b) { return w_.Bool(b); }
  bool Int(int i) { return w_.Int(i); }
  bool Uint(unsigned u) { return w_.Uint(u); }
  bool Int64(int64_t i) { return w_.Int64(i); }
  bool Uint64(uint64_t u) { return w_.Uint64(u); }
  bool Double(double d) { return w_.Double(d); }
  bool String(const char* s, rapidjson::SizeType n, bool copy) { return w_.String(s, n, copy); }
  bool Key(const char* s, rapidjson::SizeType n, bool copy) { return w_.Key(s, n, copy); }
  bool StartObject() {
    ++depth_;
    return w_.StartObject();
  }
  bool EndObject(rapidjson::SizeType n) {
    --depth_;
    return w_.EndObject(n);
  }
  bool StartArray() { return depth_++ == 0 || w_.StartArray(); }
  bool EndArray(rapidjson::SizeType n) { return --depth_ == 0 || w_.EndArray(n); }

 private:
  Writer& w_;
  int depth_ = 0;
};

// Writes the items of JSON array `json` into the array `w` is in the middle
// of, streaming them without building a document. `json` must be a valid
// array (JsonTypeOf says so).
inline void ArrayItems(Writer& w, std::string_view json) {
  rapidjson::Reader reader;
  rapidjson::MemoryStream in(json.data(), json.size());
  ArrayItemsFilter filter(w);
  reader.Parse(in, filter);
}

// Writes the JSON value `json` as it is; writes `fallback` (itself JSON)
// when `json` is not one valid JSON value. Callers check texts from users
// before building requests.
inline void Json(Writer& w, const std::string& json, const char* fallback) {
  if (auto type = JsonTypeOf(json)) {
    w.RawValue(json.data(), json.size(), *type);
    return;
  }
  std::string_view text = fallback;
  w.RawValue(text.data(), text.size(), JsonTypeOf(text).value_or(rapidjson::kNullType));
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

// A token count as a server reported it, made sane: a number, truncated to
// an integer; negative, non-numeric or missing counts are 0 and counts above
// kMaxTokenCount (or not finite) are kMaxTokenCount.
inline int64_t TokenCount(const rapidjson::Value* v) {
  if (v == nullptr || !v->IsNumber()) return 0;
  if (v->IsInt64()) return std::clamp<int64_t>(v->GetInt64(), 0, kMaxTokenCount);
  if (v->IsUint64()) return kMaxTokenCount;  // above INT64_MAX
  double d = v->GetDouble();
  if (!(d > 0)) return 0;
  return d >= static_cast<double>(kMaxTokenCount) ? kMaxTokenCount : static_cast<int64_t>(d);
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
  return Status::Error(ErrorKind::kTransient, "malformed reply: " + why);
}

}  // namespace keel::wire
