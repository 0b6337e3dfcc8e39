#pragma once
// Node: a NodeSpec with an in-memory body, for engine tests that build
// workflows without Lua. Free function; any thread.

#include <memory>
#include <string>
#include <vector>

#include "engine/workflow.h"

namespace keel::testing {

inline NodeSpec Node(std::string name, std::vector<std::string> after,
                     std::shared_ptr<NodeBody> body, bool optional = false) {
  NodeSpec n;
  n.name = std::move(name);
  n.after = std::move(after);
  n.body = std::move(body);
  n.optional = optional;
  return n;
}

}  // namespace keel::testing
