#pragma once
// ProviderCheck: the outcome of checking one LLM provider (`keel doctor`,
// and `keel serve`'s GET /api/v1/providers): its key, its endpoint (DNS,
// connect, TLS) and a minimal request, with the latency of each step.
// WriteProviderCheckJson is the one serializer of that shape, for the CLI's
// --json and the API alike; ProviderCheckLine is its one-line text form.
// Plain values and free functions; any thread. Nothing here ever holds a
// key: steps name the variable, never its value.

#include <optional>
#include <string>
#include <vector>

#include "views/json_out.h"

namespace keel {

struct ProviderCheckStep {
  std::string name;                // "key", "dns", "connect", "tls", "request"
  bool ok = false;
  std::optional<double> seconds;   // how long the step took, when it was timed
  std::string detail;              // what was found, or why it failed
};

struct ProviderCheck {
  std::string provider;
  std::string kind;      // "openai", "anthropic", "mock"
  std::string file;      // the workflow file that declares it
  std::string endpoint;  // scheme://host:port only (no path or query); "" for in-process mocks
  std::string model;
  double health_interval = 0;  // keel.provider { health = { interval } }; 0: none
  std::string result = "pending";  // "ok", "failed" or "pending" (never checked yet)
  std::string failed_step;         // the first step that failed; "" when none did
  std::string error;               // why it failed; "" when it did not
  double checked_at = 0;           // wall seconds; 0 while pending
  double seconds = 0;              // the whole check
  std::vector<ProviderCheckStep> steps;
};

// {"provider", "kind", "file", "endpoint", "model", "health_interval",
//  "result", "failed_step", "error", "checked_at", "seconds",
//  "steps": [{"step", "ok", "seconds", "detail"}]}.
void WriteProviderCheckJson(JsonOut& out, const ProviderCheck& check);
std::string ProviderCheckJson(const ProviderCheck& check);

// "NAME: ok (key OPENAI_API_KEY set; dns 1 ms, connect 0 ms, tls 12 ms,
// request 230 ms)" or "NAME: FAILED at STEP: why".
std::string ProviderCheckLine(const ProviderCheck& check);

}  // namespace keel
