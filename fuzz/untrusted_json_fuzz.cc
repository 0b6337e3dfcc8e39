// Fuzzes ParseUntrustedJson (nodes/untrusted_json.h) and the wire helpers
// that stream JSON texts into requests (nodes/wire_json.h). Properties: no
// crash; a text that parses serializes to JSON that parses again to the
// same text; JsonTypeOf agrees with the parse about what a valid value is;
// streaming an array's items yields valid JSON.

#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz/fuzz_check.h"
#include "nodes/json_document.h"
#include "nodes/untrusted_json.h"
#include "nodes/wire_json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace keel;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  JsonDocument doc;
  Status parsed = ParseUntrustedJson(text, &doc);
  if (!parsed.ok()) {
    FUZZ_CHECK(doc.IsNull(), "a failed parse leaves the document null");
    FUZZ_CHECK(parsed.message().starts_with("invalid JSON at offset "), parsed.message());
    return 0;
  }
  std::string once = wire::Serialize(doc);
  JsonDocument again;
  Status reparsed = ParseUntrustedJson(once, &again);
  FUZZ_CHECK(reparsed.ok(), reparsed.message() + " in " + once);
  FUZZ_CHECK(wire::Serialize(again) == once, once);

  // What a request writer does with a user's or a model's JSON text.
  auto type = wire::JsonTypeOf(once);
  FUZZ_CHECK(type.has_value(), once);
  rapidjson::StringBuffer buf;
  wire::Writer w(buf);
  w.StartArray();
  if (*type == rapidjson::kArrayType) wire::ArrayItems(w, once);
  wire::Json(w, std::string(text), "null");
  w.EndArray();
  std::string written(buf.GetString(), buf.GetSize());
  JsonDocument check;
  Status valid = ParseUntrustedJson(written, &check);
  FUZZ_CHECK(valid.ok(), valid.message() + " in " + written);
  return 0;
}
