#pragma once
// Json: a parsed JSON document with lookups that never crash. A missing
// member, an index out of range or a wrong type reads as null (or "", 0,
// false), so a test fails on a CHECK instead of aborting.
//
// A Json is an immutable view that shares its document; copies are cheap and
// may be read from several threads.

#include <rapidjson/document.h>

#include <cstdint>
#include <memory>
#include <string>

namespace keel::testing {

class Json {
 public:
  // Parses `text`. Throws std::runtime_error quoting the text when it is not
  // exactly one JSON value.
  static Json Parse(const std::string& text);
  // A missing value: reads as null.
  static Json Null() { return Json(nullptr, nullptr); }

  Json operator[](const std::string& key) const;  // member, or null
  Json operator[](size_t index) const;            // element, or null

  bool IsNull() const;
  bool IsObject() const;
  bool IsArray() const;
  bool IsString() const;
  bool IsNumber() const;
  bool IsBool() const;

  std::string Str() const;   // "" unless a string
  double Num() const;        // 0 unless a number
  int64_t Int() const;       // 0 unless an integer
  bool Bool() const;         // false unless true
  size_t Size() const;       // elements of an array, members of an object, else 0
  std::string Dump() const;  // compact JSON text; "null" when missing

 private:
  Json(std::shared_ptr<const rapidjson::Document> doc, const rapidjson::Value* value)
      : doc_(std::move(doc)), value_(value) {}

  std::shared_ptr<const rapidjson::Document> doc_;
  const rapidjson::Value* value_;  // inside *doc_; null when missing
};

}  // namespace keel::testing
