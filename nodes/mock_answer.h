#pragma once
// The reply bodies MockResponder (nodes/mock_reply.h) writes: answers, with
// text or tool calls, and error bodies, in the OpenAI and Anthropic dialects.
// For mock_reply.cc only. Free functions without state; any thread.

#include <cstdint>
#include <string>
#include <vector>

#include "nodes/mock_reply.h"

namespace keel::mock_detail {

// One tool call of a reply.
struct Call {
  std::string name;
  std::string arguments;  // a JSON object as text
};

// What a successful answer says, in either dialect.
struct Answer {
  std::string id;  // derived from the request
  std::string model;
  std::string text;         // omitted (null) when empty and there are calls
  std::vector<Call> calls;  // tool calls
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
};

// The body of a successful answer, in each dialect.
std::string OpenAIAnswer(const Answer& a);
std::string AnthropicAnswer(const Answer& a);

// A 400 whose error body says "mock: MESSAGE".
MockReply BadRequestReply(MockDialect dialect, const std::string& message);

}  // namespace keel::mock_detail
