// Fuzzes the anthropic wire format's reply parser (nodes/anthropic_provider.cc) on
// whole replies: status, headers and body; see fuzz/provider_reply.h.

#include "fuzz/provider_reply.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  keel::fuzz::FuzzProviderReply("anthropic", data, size);
  return 0;
}
