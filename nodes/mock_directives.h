#pragma once
// Mock directives: the `[[mock:KEY=VALUE]]` markers a prompt may carry to
// steer the mock LLM (fault, times, retry_after, latency, reply, call,
// tokens; docs/mock-llm.md). Parsing only; MockResponder acts on them.
// Free functions without state; any thread.

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace keel {

// The directives of one request, system prompt first, last user message second.
struct MockDirectives {
  std::string fault;
  int64_t times = -1;  // -1: every request
  double retry_after = 1;
  double latency_ms = 0;
  std::optional<std::string> reply;
  std::vector<std::pair<std::string, std::string>> calls;  // name, arguments JSON
  std::optional<std::pair<int64_t, int64_t>> tokens;
  std::string written;  // every directive as written, for the fault key
};

// Applies the directives written in `text` to `d` and returns the text
// without them, trimmed. A malformed directive sets *error (what a 400
// says) and ends the parsing.
std::string TakeMockDirectives(const std::string& text, MockDirectives* d,
                               std::optional<std::string>* error);

}  // namespace keel
