// Fuzzes MockResponder::Respond (nodes/mock_reply.cc), which reads request
// bodies in the keel-mock-llm server and in the in-process `mock` provider.
// The first byte picks the dialect; the rest is the request body.
// Properties: no crash; every body that is not a deliberate malformed or
// truncated fault is valid JSON, and a 200 answer is one the dialect's own
// reply parser takes without a crash.

#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz/fuzz_check.h"
#include "nodes/json_document.h"
#include "nodes/mock_reply.h"
#include "nodes/provider.h"
#include "nodes/untrusted_json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace keel;
  if (size == 0) return 0;
  const MockDialect dialect = data[0] & 1 ? MockDialect::kAnthropic : MockDialect::kOpenAI;
  const std::string body(reinterpret_cast<const char*>(data) + 1, size - 1);
  MockResponder responder;
  MockReply reply = responder.Respond(body, dialect);
  if (reply.fault == "malformed" || reply.fault == "truncated" || reply.status == 0) return 0;
  JsonDocument doc;
  Status parsed = ParseUntrustedJson(reply.body, &doc);
  FUZZ_CHECK(parsed.ok(), parsed.message() + " in " + reply.body);
  HttpResponse response;
  response.status = reply.status;
  response.body = reply.body;
  const Provider* provider = ProviderFor(dialect == MockDialect::kOpenAI ? "openai" : "anthropic");
  (void)provider->Parse(response, 0);
  return 0;
}
