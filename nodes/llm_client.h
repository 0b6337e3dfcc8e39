#pragma once
// LlmClient: makes chat calls to the providers a script declared, through
// the provider's gate (rpm, tpm, max_concurrency), the shared HttpLoop, and
// the provider's wire format; `mock` providers answer in process from a
// MockResponder after their `latency`, on the clock's timer thread.
//
// With output kJson/kSchema the reply text must parse as JSON (a ```json
// fence around it is allowed) and, for kSchema, validate against the schema
// (RapidJSON's JSON Schema support); otherwise the call fails kTransient with
// the reason, so retries and fallbacks apply. On success the response's text
// is that JSON, compact and without the fence.
//
// API keys are read from the provider's api_key_env at each call, without
// surrounding whitespace (a CRLF .env file leaves a "\r"); a key with a
// control character inside fails the call kPermanent. Keys never appear in
// a result, a record or a message.
//
// Thread-safety: providers are added before any call; Call may then be used
// from any thread. `done` runs once, on the I/O thread, the timer thread, the
// calling thread or the thread that cancels the call's token; it must not
// block. The client must outlive its calls (destroy it after every `done`).

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/cancel_token.h"
#include "engine/clock.h"
#include "engine/quota_source.h"
#include "engine/status.h"
#include "nodes/chat.h"
#include "nodes/http_loop.h"
#include "nodes/mock_reply.h"
#include "nodes/provider_config.h"
#include "nodes/provider_gate.h"

namespace keel {

// What one call cost and how it went; stored as an "llm_call" event.
struct LlmCallRecord {
  std::string provider;
  std::string model;  // the model that answered, else the one asked for
  // For traces (OpenTelemetry's gen_ai.request.model, gen_ai.provider.name,
  // server.address): the model asked for, the provider's kind ("openai",
  // "anthropic", "mock") and the host of its base URL ("" for mock).
  std::string request_model;
  std::string provider_kind;
  std::string server;
  Usage usage;
  double cost = 0;            // at the provider's prices
  double seconds = 0;         // from Call to completion, waits included
  double queued = 0;          // seconds spent waiting at the gate
  int http_status = 0;        // 0 when no HTTP response arrived (or mock)
  std::string finish_reason;  // of a reply that arrived ("stop", "length", ...); "" otherwise
  Status outcome;             // ok, or why it failed
  // The request as sent and the reply (nodes/llm_call_recording.h), built
  // once per call when the provider records; "" otherwise (and the reply on
  // a failed call).
  std::string request_json;
  std::string reply_json;
  // Why the provider's shared rate limits fell back to this process's own
  // (ProviderGate::TakeWarning), told by the first call admitted after; "".
  std::string rate_limit_warning;
};

using LlmDone = std::function<void(Result<ChatResponse>, LlmCallRecord)>;

class LlmClient {
 public:
  // With `quotas`, the providers' rpm and tpm are shared through it
  // (ProviderGate, keys "provider:NAME:rpm" and ":tpm"); null: per process.
  LlmClient(Clock* clock, std::shared_ptr<HttpLoop> loop,
            std::shared_ptr<QuotaSource> quotas = nullptr);
  ~LlmClient();

  // Declares a provider (replacing one of the same name). Fails kPermanent
  // for an unknown kind or a non-mock provider without base_url.
  Status AddProvider(ProviderConfig config);
  const ProviderConfig* Find(const std::string& name) const;
  // The declared providers' names, sorted.
  std::vector<std::string> ProviderNames() const {
    std::vector<std::string> names;
    for (const auto& entry : providers_) names.push_back(entry.first);
    return names;
  }

  // One call to provider `provider`. `deadline` (Clock::Now() time, 0: none)
  // and `cancel` (may be null; must outlive the call) abort the wait at the
  // gate and the transfer. An unknown provider fails kPermanent.
  void Call(const std::string& provider, ChatRequest request, const CancelToken* cancel,
            double deadline, LlmDone done);

  Clock* clock() const { return clock_; }

 private:
  struct Entry;
  Clock* const clock_;
  const std::shared_ptr<HttpLoop> loop_;
  const std::shared_ptr<QuotaSource> quotas_;
  MockResponder mock_;
  std::map<std::string, std::shared_ptr<Entry>> providers_;  // written before calls only
};

// Parses `text` as the JSON output a request asked for and checks it against
// `schema_json` (when not empty). Returns the JSON text or kTransient naming
// what is wrong (the parse error offset, or the schema keyword and path).
Result<std::string> CheckJsonOutput(const std::string& text, const std::string& schema_json);

}  // namespace keel
