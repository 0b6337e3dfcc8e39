#include "nodes/mock_schema_value.h"

#include <rapidjson/pointer.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "nodes/wire_json.h"

namespace keel {
namespace {

using rapidjson::Document;
using rapidjson::Value;

// Bounds on a schema's smallest value, so a recursive schema ends quickly.
constexpr int kMaxSchemaDepth = 24;
constexpr int kMaxSchemaValues = 10000;
constexpr double kMaxCount = 100000;

const Value* Member(const Value& v, const char* key) { return wire::Member(v, key); }

std::string ToJson(const Value& v) { return wire::Serialize(v); }

std::string Str(const Value& v, const char* key) { return wire::StringOr(wire::Member(v, key)); }


class SmallestValue {
 public:
  SmallestValue(const Value& root, Document::AllocatorType& alloc) : root_(root), alloc_(alloc) {}

  Value Of(const Value& schema, int depth) {
    if (depth > kMaxSchemaDepth || --budget_ < 0 || !schema.IsObject()) return Value();
    if (const Value* ref = Member(schema, "$ref"); ref && ref->IsString()) {
      std::string target = ref->GetString();
      if (target.empty() || target[0] != '#') return Value();
      const rapidjson::Pointer pointer(target.substr(1).c_str());
      const Value* found = pointer.IsValid() ? pointer.Get(root_) : nullptr;
      return found ? Of(*found, depth + 1) : Value();
    }
    if (const Value* v = Member(schema, "const")) return Value(*v, alloc_);
    if (const Value* e = Member(schema, "enum"); e && e->IsArray() && !e->Empty()) {
      return Value((*e)[0], alloc_);
    }
    for (const char* key : {"anyOf", "oneOf"}) {
      if (const Value* alts = Member(schema, key); alts && alts->IsArray() && !alts->Empty()) {
        return Of((*alts)[0], depth + 1);
      }
    }
    if (const Value* all = Member(schema, "allOf"); all && all->IsArray() && !all->Empty()) {
      return AllOf(*all, depth);
    }
    const std::string type = TypeOf(schema);
    if (type == "object") return Object(schema, depth);
    if (type == "array") return Array(schema, depth);
    if (type == "string") return String(schema);
    if (type == "integer" || type == "number") return Number(schema, type == "integer");
    if (type == "boolean") return Value(true);
    return Value();
  }

 private:
  static std::string TypeOf(const Value& schema) {
    const Value* type = Member(schema, "type");
    if (type != nullptr && type->IsString()) return type->GetString();
    if (type != nullptr && type->IsArray()) {
      for (const Value& t : type->GetArray()) {
        if (t.IsString() && std::string(t.GetString()) != "null") return t.GetString();
      }
      return "null";
    }
    if (Member(schema, "properties") || Member(schema, "required")) return "object";
    if (Member(schema, "items")) return "array";
    if (Member(schema, "minLength") || Member(schema, "pattern")) return "string";
    if (Member(schema, "minimum") || Member(schema, "maximum")) return "number";
    return "null";
  }

  // Merges the members of the alternatives' values when all are objects.
  Value AllOf(const Value& all, int depth) {
    Value merged(rapidjson::kObjectType);
    for (const Value& part : all.GetArray()) {
      Value v = Of(part, depth + 1);
      if (!v.IsObject()) return Of(all[0], depth + 1);
      for (auto& m : v.GetObject()) {
        if (!merged.HasMember(m.name)) merged.AddMember(m.name, m.value, alloc_);
      }
    }
    return merged;
  }

  Value Object(const Value& schema, int depth) {
    Value out(rapidjson::kObjectType);
    const Value* props = Member(schema, "properties");
    const Value* required = Member(schema, "required");
    auto add = [&](const Value& name) {
      if (out.HasMember(name)) return;
      const Value* sub = props ? Member(*props, name.GetString()) : nullptr;
      Value v = sub ? Of(*sub, depth + 1) : Value("mock", alloc_);
      out.AddMember(Value(name, alloc_), v, alloc_);
    };
    if (required != nullptr && required->IsArray() && !required->Empty()) {
      for (const Value& name : required->GetArray()) {
        if (name.IsString()) add(name);
      }
    } else if (props != nullptr && props->IsObject()) {
      for (const auto& m : props->GetObject()) add(m.name);
    }
    return out;
  }

  Value Array(const Value& schema, int depth) {
    Value out(rapidjson::kArrayType);
    const int64_t n = static_cast<int64_t>(Count(schema, "minItems", 0));
    const Value* items = Member(schema, "items");
    const Value* prefix = Member(schema, "prefixItems");
    if (items != nullptr && items->IsArray()) std::swap(items, prefix);
    for (int64_t i = 0; i < n && budget_ > 0; ++i) {
      const Value* item = items;
      if (prefix != nullptr && prefix->IsArray() && static_cast<size_t>(i) < prefix->Size()) {
        item = &(*prefix)[static_cast<rapidjson::SizeType>(i)];
      }
      out.PushBack(item ? Of(*item, depth + 1) : Value("mock", alloc_), alloc_);
    }
    return out;
  }

  Value String(const Value& schema) {
    static const std::pair<const char*, const char*> kFormats[] = {
        {"date-time", "1970-01-01T00:00:00Z"},
        {"date", "1970-01-01"},
        {"time", "00:00:00Z"},
        {"email", "mock@example.com"},
        {"uri", "http://example.com/mock"},
        {"uuid", "00000000-0000-0000-0000-000000000000"},
    };
    std::string s = "mock";
    const std::string format = Str(schema, "format");
    for (const auto& [name, value] : kFormats) {
      if (format == name) s = value;
    }
    const auto min_length = static_cast<size_t>(Count(schema, "minLength", 0));
    if (s.size() < min_length) s.resize(min_length, 'x');
    s.resize(std::min(s.size(), static_cast<size_t>(Count(schema, "maxLength", s.size()))));
    return Value(s.c_str(), static_cast<rapidjson::SizeType>(s.size()), alloc_);
  }

  // A count keyword of `schema` (minItems, minLength ...), else `otherwise`;
  // at most kMaxCount, so an absurd schema cannot exhaust memory.
  static double Count(const Value& schema, const char* key, double otherwise) {
    const Value* v = Member(schema, key);
    if (v == nullptr || !v->IsNumber()) return otherwise;
    return std::clamp(std::ceil(v->GetDouble()), 0.0, kMaxCount);
  }

  static Value Number(const Value& schema, bool integer) {
    auto num = [&](const char* key) -> std::optional<double> {
      const Value* v = Member(schema, key);
      if (v != nullptr && v->IsNumber()) return v->GetDouble();
      return std::nullopt;
    };
    std::optional<double> low = num("minimum");
    bool exclusive = false;
    if (std::optional<double> ex = num("exclusiveMinimum")) {
      low = ex;
      exclusive = true;
    } else if (const Value* flag = Member(schema, "exclusiveMinimum"); flag && flag->IsTrue()) {
      exclusive = low.has_value();
    }
    std::optional<double> high = num("maximum");
    double v = low.value_or(high && *high < 0 ? *high : 0);
    if (integer) v = exclusive ? std::floor(v) + 1 : std::ceil(v);
    if (!integer && exclusive) v = high && *high > v ? (v + *high) / 2 : v + 1;
    std::optional<double> step = num("multipleOf");
    if (step && *step > 0) v = std::ceil(v / *step) * *step;
    if (integer && std::fabs(v) < 9e18) return Value(static_cast<int64_t>(v));
    return Value(v);
  }

  const Value& root_;
  Document::AllocatorType& alloc_;
  int budget_ = kMaxSchemaValues;  // values left to generate
};

}  // namespace

std::string SmallestJson(const rapidjson::Value& schema) {
  Document out;
  Value v = SmallestValue(schema, out.GetAllocator()).Of(schema, 0);
  return ToJson(v);
}


}  // namespace keel
