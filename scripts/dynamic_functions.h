#pragma once
// The engine side of keel.map, keel.call and keel.loop declarations: their
// Lua functions as engine NodeFunctions, and the DynamicNode the loader puts
// on their NodeSpec. Built on the loading thread; the functions may then be
// called from any thread.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/dynamic_node.h"
#include "engine/node_policy.h"
#include "scripts/declarations.h"
#include "scripts/function_node.h"
#include "scripts/lua_state_pool.h"

namespace keel {

// Function `kind` of node `index` run on the pool's states.
// Thread-safety: Call may be called from several threads at once.
class LuaNodeFunction final : public NodeFunction {
 public:
  LuaNodeFunction(std::shared_ptr<LuaStatePool> pool, int index, NodeFunctionKind kind)
      : pool_(std::move(pool)), index_(index), kind_(kind) {}
  void Call(const NodeContext& ctx, JsonText arg, NodeCompletion done) override {
    StartNodeFunction(pool_, index_, kind_, ctx, std::move(arg), std::move(done));
  }

 private:
  const std::shared_ptr<LuaStatePool> pool_;
  const int index_;
  const NodeFunctionKind kind_;
};

// Makes the body of a node declaration (index: its NodeFunctions index) with
// its resolved policy; null when it has nothing to run.
using BodyBuilder =
    std::function<std::shared_ptr<NodeBody>(const NodeDeclaration&, int, const NodePolicy&)>;

// The DynamicNode of map, call or loop declaration `node` (NodeFunctions
// index `index`; a map's item is index + 1). A map's item gets the map's
// policy options under its own, over `defaults`, with `item_key` as its
// breaker and bulkhead key. Problems are appended as Diagnostic lines.
std::shared_ptr<const DynamicNode> BuildDynamic(const NodeDeclaration& node, int index,
                                                const std::string& item_key,
                                                const NodePolicy& defaults,
                                                const std::shared_ptr<LuaStatePool>& pool,
                                                const BodyBuilder& build_body,
                                                std::vector<std::string>* problems);

}  // namespace keel
