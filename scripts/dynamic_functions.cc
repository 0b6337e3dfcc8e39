#include "scripts/dynamic_functions.h"

namespace keel {

std::shared_ptr<const DynamicNode> BuildDynamic(const NodeDeclaration& node, int index,
                                                const std::string& item_key,
                                                const NodePolicy& defaults,
                                                const std::shared_ptr<LuaStatePool>& pool,
                                                const BodyBuilder& build_body,
                                                std::vector<std::string>* problems) {
  auto dyn = std::make_shared<DynamicNode>();
  dyn->kind = node.kind == "map"    ? DynamicNode::Kind::kMap
              : node.kind == "call" ? DynamicNode::Kind::kCall
                                    : DynamicNode::Kind::kLoop;
  dyn->start = std::make_shared<LuaNodeFunction>(pool, index, NodeFunctionKind::kValue);
  if (node.has_done_when) {
    dyn->done_when = std::make_shared<LuaNodeFunction>(pool, index, NodeFunctionKind::kDoneWhen);
  }
  dyn->workflow = node.workflow;
  dyn->max_concurrency = node.max_concurrency;
  dyn->tolerate = node.tolerate;
  dyn->max_iterations = node.max_iterations;
  if (!node.inner.empty()) {
    const NodeDeclaration& inner = node.inner.front();
    auto item = std::make_shared<WorkflowSpec>();
    item->name = node.name;
    item->where = inner.where;
    NodeSpec& spec = item->nodes.emplace_back();
    spec.name = "";
    spec.kind = inner.kind;
    spec.has_when = inner.has_when;
    spec.where = inner.where;
    JsonText options = MergeJsonObjects(node.policy, inner.policy);
    auto policy = ParseNodePolicy(item_key, *options, defaults);
    if (policy.ok()) {
      spec.policy = std::move(policy).value();
    } else {
      problems->push_back(
          Diagnostic{inner.where, node.name, "node: " + policy.status().message()}.ToString());
    }
    spec.body = build_body(inner, index + 1, spec.policy);
    if (!spec.body) {
      problems->push_back(
          Diagnostic{inner.where, node.name, "its node has nothing to run (no `run`)"}.ToString());
    }
    dyn->item = std::move(item);
  }
  return dyn;
}

}  // namespace keel
