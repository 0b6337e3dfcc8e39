#pragma once
// CheckProvider: `keel doctor`'s check of one declared LLM provider, step by
// step, each timed: (1) key: its api_key_env is set and not blank (the
// value is never printed, not even in part); (2) the endpoint reached: DNS,
// TCP connect, TLS for https (nodes/endpoint_probe.h); (3) request: one chat
// completion of at most one output token through the provider's own wire
// format (nodes/provider.h) and the HTTP loop the runs use, so the key and
// the request shape are exercised: about ten input tokens and one output
// token at the provider's prices. A step that fails ends the check. `mock`
// providers without a base_url answer in process and have nothing to check.
// Blocks for at most about 2 * `timeout` seconds. Call from one thread.

#include <string>

#include "nodes/http_loop.h"
#include "nodes/provider_config.h"
#include "views/provider_check.h"

namespace keel::cli {

ProviderCheck CheckProvider(const ProviderConfig& config, const std::string& file, double timeout,
                            HttpLoop* loop);

}  // namespace keel::cli
