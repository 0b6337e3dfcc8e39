// Fuzzes the openai wire format's reply parser (nodes/openai_provider.cc) on
// whole replies: status, headers and body; see fuzz/provider_reply.h.

#include "fuzz/provider_reply.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  keel::fuzz::FuzzProviderReply("openai", data, size);
  return 0;
}
