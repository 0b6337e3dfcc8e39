-- One agent node calling the provider `fast` (the mock LLM server in the
-- tests: KEEL_PROVIDER_FAST gives its URL).
local keel = require "keel"

keel.provider "fast" {
  kind = "openai", base_url = "http://127.0.0.1:9/v1", model = "gpt-4o-mini",
  prices = { input = 0.15, output = 0.60 },
}

return keel.workflow "agent" {
  params = { topic = "circuit breakers" },

  keel.agent "writer" {
    provider = "fast",
    system = "You are a terse technical writer.",
    prompt = "Explain {{params.topic}} in one line.",
    max_tokens = 100,
  },
}
