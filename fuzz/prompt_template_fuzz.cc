// Fuzzes PromptTemplate (nodes/prompt_template.h): Parse on any text, then
// Render with parameters and dependency outputs. The input is the template;
// when it holds a blank line, what comes before it is instead the JSON of
// the parameters and of dependency `a`'s output (used when it is valid
// JSON, as outputs always are). Properties: no crash; every parsed field
// starts with params or deps and has no empty segment; a template without
// fields renders to itself.

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "fuzz/fuzz_check.h"
#include "nodes/json_document.h"
#include "nodes/prompt_template.h"
#include "nodes/untrusted_json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace keel;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto [head, rest] = fuzz::SplitHead(input);
  std::string value = R"({"topic":"t","n":1,"list":[1,{"a":"b"}],"s":"x"})";
  JsonDocument doc;
  if (!head.empty() && ParseUntrustedJson(head, &doc).ok()) value = std::string(head);

  auto parsed = PromptTemplate::Parse(std::string(rest));
  if (!parsed.ok()) return 0;
  const PromptTemplate& t = *parsed;
  for (const PromptTemplate::Field& field : t.fields()) {
    FUZZ_CHECK(field.path.size() >= 2, field.text);
    FUZZ_CHECK(field.path[0] == "params" || field.path[0] == "deps", field.text);
    for (const std::string& seg : field.path) FUZZ_CHECK(!seg.empty(), field.text);
  }
  std::vector<std::pair<std::string, JsonText>> deps = {
      {"a", MakeJson(value)},
      {"b", MakeJson(R"("text")")},
      {"c", MakeJson(R"({"hits":[{"title":"x"}],"n":null})")},
  };
  Result<std::string> rendered = t.Render(MakeJson(value), deps);
  if (t.fields().empty()) {
    FUZZ_CHECK(rendered.ok() && *rendered == rest, std::string(rest));
  }
  return 0;
}
