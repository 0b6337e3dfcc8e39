#include "scripts/wait_loader.h"

#include <rapidjson/document.h>

#include "scripts/function_node.h"

namespace keel {

void BuildWait(const NodeDeclaration& node, int index, const std::shared_ptr<LuaStatePool>& pool,
               NodeSpec* spec) {
  auto wait = std::make_shared<WaitSpec>();
  rapidjson::Document doc;
  if (node.wait && !doc.Parse(node.wait->c_str()).HasParseError() && doc.IsObject()) {
    auto number = [&doc](const char* name) {
      auto it = doc.FindMember(name);
      return it != doc.MemberEnd() && it->value.IsNumber() ? it->value.GetDouble() : 0.0;
    };
    if (auto it = doc.FindMember("signal"); it != doc.MemberEnd() && it->value.IsString()) {
      wait->signal = it->value.GetString();
    }
    wait->timeout = number("timeout");
    wait->delay = number("delay");
    wait->until = number("until");
  }
  spec->wait = std::move(wait);
  spec->policy.timeout = 0;
  std::shared_ptr<NodeBody> body = MakeWaitBody();
  if (node.has_when) body = std::make_shared<FunctionNode>(pool, index, spec->policy.memory, body);
  spec->body = std::move(body);
}

}  // namespace keel
