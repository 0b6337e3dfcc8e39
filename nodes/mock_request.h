#pragma once
// What MockResponder (nodes/mock_reply.h) reads from a chat request of either
// dialect: the conversation, its tools and the output it asks for. For
// mock_reply.cc only. Free functions without state; any thread.

#include <rapidjson/document.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nodes/mock_reply.h"

namespace keel::mock_detail {

// A malformed request: becomes a 400 with this message.
struct BadRequest {
  std::string message;
};

// A tool the request offers.
struct Tool {
  std::string name;
  const rapidjson::Value* schema = nullptr;  // in the request document; null when absent
};

// What the reply's text must be: free text, any JSON value, or a value of
// Conversation::schema.
enum class Output { kText, kJson, kSchema };

// What Respond needs from a request, in either dialect. Pointers point into
// the request document.
struct Conversation {
  std::string model;
  std::string system;
  std::string user;                       // last user message as sent
  std::string transcript;                 // every message's role and text
  std::vector<std::string> tool_results;  // from the last user message on
  std::vector<Tool> tools;
  bool tools_disabled = false;
  std::string forced_tool;
  Output output = Output::kText;
  const rapidjson::Value* schema = nullptr;
  // Anthropic requests carry their schema inside the system prompt's text:
  // parsed from there, it lives here.
  std::shared_ptr<rapidjson::Document> system_schema;
};

// Fills `c` from `req` (a JSON object); a BadRequest when it cannot be answered.
std::optional<BadRequest> ReadConversation(const rapidjson::Value& req, MockDialect dialect,
                                           Conversation* c);

}  // namespace keel::mock_detail
