#pragma once
// What an llm_call event records of one model call: the request as sent
// (RecordedRequest) and the reply (RecordedReply), as JSON objects of at
// most `cap` bytes, so that the dashboard can show prompts and replies and a
// long conversation cannot bloat the event log.
//
// Over the cap the structure stays and long strings are cut, each to a head
// followed by "…[N bytes cut]", in this order until it fits: every string to
// a 256-byte head (the system prompt and the earlier messages first, the
// last user message last); the others than the last user message to
// nothing; the earliest messages left out (counted in "omitted_messages");
// the last user message to nothing; as a last resort only the marks remain.
// A cut object carries "truncated": true and "original_bytes" (its size
// uncut).
//
// Every occurrence of `secret` (the provider's key, when not empty) is
// replaced by "[redacted]"; invalid UTF-8 becomes U+FFFD. Request headers
// are never part of a record.
//
// Free functions without state; any thread.

#include <cstddef>
#include <string>

#include "nodes/chat.h"

namespace keel {

// {"system": "...", "messages": [{"role", "content", "tool_calls"?: [{"id",
// "name", "arguments"}], "tool_call_id"?}...], "tools": ["name"...]}; the
// system prompt is left out when empty, tool-call arguments stay the text
// the model sent.
std::string RecordedRequest(const ChatRequest& request, size_t cap, const std::string& secret);

// {"content": "...", "tool_calls": [{"id", "name", "arguments"}...]}.
std::string RecordedReply(const ChatResponse& response, size_t cap, const std::string& secret);

}  // namespace keel
