#pragma once
// ProviderConfig: what `keel.provider NAME { ... }` declares. A plain value.

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace keel {

// The default cap, in bytes of JSON, of each of an llm_call event's recorded
// request and reply.
inline constexpr size_t kDefaultRecordBytes = 32 * 1024;
// The caps `record = N` may set.
inline constexpr size_t kMinRecordBytes = 1024;
inline constexpr size_t kMaxRecordBytes = 16 * 1024 * 1024;

struct ProviderConfig {
  std::string name;
  std::string kind;         // "openai" | "anthropic" | "mock"
  std::string base_url;     // e.g. https://api.openai.com/v1; "" for mock
  std::string model;        // default model
  std::string api_key_env;  // environment variable holding the key; "" for none
  int max_concurrency = 0;  // calls in flight at once; 0: unlimited
  double rpm = 0;           // requests per minute; 0: unlimited
  double tpm = 0;           // tokens (prompt + completion) per minute; 0: unlimited
  double input_price = 0;   // per million prompt tokens, in the user's currency
  double output_price = 0;  // per million completion tokens
  // Extra request headers: name, value.
  std::vector<std::pair<std::string, std::string>> headers;
  double latency = 0;   // mock only: seconds each reply takes
  std::string ca_file;  // PEM certificates to trust instead of the system's; "": the system's
  bool http2 = true;    // offer HTTP/2 over https (one shared connection when the server takes it)
  double health_interval = 0;  // seconds between `keel serve`'s probes; 0: none
  // Cap of each recorded request and reply (keel.provider { record = ... });
  // 0: prompts and replies are not recorded.
  size_t record_bytes = kDefaultRecordBytes;
  std::string where;    // "file.lua:3", for messages
};

// The cost of `usage` at the provider's prices.
inline double CostOf(const ProviderConfig& provider, int64_t prompt_tokens,
                     int64_t completion_tokens) {
  return (provider.input_price * static_cast<double>(prompt_tokens) +
          provider.output_price * static_cast<double>(completion_tokens)) / 1e6;
}

}  // namespace keel
