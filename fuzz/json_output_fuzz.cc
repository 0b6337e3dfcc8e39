// Fuzzes CheckJsonOutput (nodes/json_output.cc): a model's text when a call
// asked for JSON, with or without a ```json fence, checked against one of a
// few fixed schemas (schemas come from the script and are checked at load;
// the model's text is what is untrusted). The first byte picks the schema.
// Properties: no crash; an accepted output is canonical JSON (it parses and
// serializes to itself).

#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz/fuzz_check.h"
#include "nodes/json_document.h"
#include "nodes/llm_client.h"
#include "nodes/untrusted_json.h"
#include "nodes/wire_json.h"

namespace {

const char* const kSchemas[] = {
    "",
    R"({"type":"object"})",
    R"({"type":"object","properties":{"name":{"type":"string","maxLength":8},"age":{"type":"integer","minimum":0}},"required":["name"],"additionalProperties":false})",
    R"({"type":"array","items":{"type":"number"},"minItems":1,"uniqueItems":true})",
    R"({"enum":["a",1,null,[1],{"x":true}]})",
    R"({"type":"object","properties":{"p":{"type":"string","pattern":"^[a-z]+(x|y)*$"}}})",
    R"({"anyOf":[{"type":"string"},{"type":"object","patternProperties":{"^n":{"type":"null"}}}]})",
    R"({"type":"object","properties":{"list":{"type":"array","items":{"$ref":"#"}}}})",
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string schema = kSchemas[data[0] % (sizeof(kSchemas) / sizeof(kSchemas[0]))];
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  keel::Result<std::string> checked = keel::CheckJsonOutput(text, schema);
  if (!checked.ok()) return 0;
  keel::JsonDocument doc;
  keel::Status parsed = keel::ParseUntrustedJson(*checked, &doc);
  FUZZ_CHECK(parsed.ok(), parsed.message() + " in " + *checked);
  FUZZ_CHECK(keel::wire::Serialize(doc) == *checked, *checked);
  return 0;
}
