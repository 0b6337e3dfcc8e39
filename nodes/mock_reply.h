#pragma once
// MockResponder: the deterministic brain of the mock LLM — given a chat
// request body it decides the reply (or the fault) a server would send.
// Shared by the `mock` provider kind (offline, in process) and the
// keel-mock-llm server binary, so both behave the same.
//
// Replies: the last user message, with its directives removed, is echoed as
// "echo: TEXT"; a request asking for JSON (response_format json_object, or
// json_schema; for Anthropic a system prompt containing "JSON") gets a JSON
// value instead ({"echo": TEXT}, or the smallest value satisfying the
// schema); a request offering tools whose conversation has no tool results
// yet after its last user message calls the first tool (or the one
// tool_choice names; none with tool_choice "none"), arguments built from its
// parameter schema, unless directives say which; once tool results are
// present the reply quotes them ("tool results: R1 | R2").
// Usage is counted as ceil(characters / 4) for prompt and completion.
//
// Directives, written anywhere in the last user message (or the system
// prompt) as [[mock:key=value]] (values cannot contain "]]"):
//   fault=500|502|503|529|429|400|401|403|404|hang|malformed|truncated|reset
//   times=N        the fault hits only the first N requests carrying the same
//                  directives and conversation; later ones succeed
//   retry_after=S  seconds sent as Retry-After with a 429 (default 1)
//   latency=MS     this request takes MS milliseconds more
//   reply=TEXT     the reply text (a JSON text when JSON output is asked
//                  for); with tools, the answer once tool results are present
//   call=NAME ARGS one tool call (ARGS a JSON object, default {}) while no tool
//                  results are present; repeat for parallel calls
//   tokens=P,C     report P prompt and C completion tokens
//
// Request bodies that are not JSON, lack `messages` or carry a malformed
// directive get a 400 with an error body of the dialect. Ids are derived from
// a hash of the request body, so the same request gets the same reply.
//
// Thread-safe: the `times` counters are guarded by one mutex.

#include <cstdint>
#include <map>
#include <string>

#include "engine/mutex.h"

namespace keel {

enum class MockDialect { kOpenAI, kAnthropic };

struct MockReply {
  int status = 200;
  double retry_after = -1;  // seconds to send as Retry-After; -1: no header
  // "" for a normal answer (of `status`); "hang": never answer; "malformed":
  // `body` is not JSON; "truncated": `body` is cut short and the connection
  // then closed; "reset": close the connection without answering.
  std::string fault;
  double latency = 0;  // extra seconds the directives ask for
  std::string body;    // the response body, in the dialect's shape
  std::string model;   // the request's model ("" when unreadable)
  std::string user;    // the last user message as sent, directives included
};

// True for the names the `fault` directive accepts.
bool IsMockFault(const std::string& fault);

// What a server sends instead of the answer `answer_body` when `fault` (a
// name IsMockFault accepts) hits a request: an error body of the dialect for
// a status fault (a 429 carries `retry_after`), the first half of
// `answer_body` for "malformed" and "truncated", nothing for "hang" and
// "reset". Used by MockResponder for directives and by servers for the faults
// they inject themselves.
MockReply MockFaultReply(MockDialect dialect, const std::string& fault,
                         const std::string& answer_body, double retry_after);

// MockResponder: see the top of this file. Respond never throws.
class MockResponder {
 public:
  MockReply Respond(const std::string& request_body, MockDialect dialect);

 private:
  Mutex mu_;
  std::map<std::string, int64_t> seen_ GUARDED_BY(mu_);  // requests per fault key
};

}  // namespace keel
