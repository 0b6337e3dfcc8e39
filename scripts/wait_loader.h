#pragma once
// Builds the engine side of a `keel.wait` declaration: its WaitSpec and its
// body. Free functions; call while loading a script.

#include <memory>

#include "engine/wait_node.h"
#include "engine/workflow.h"
#include "scripts/declarations.h"
#include "scripts/lua_state_pool.h"

namespace keel {

// Sets spec->wait from `node` (kind "wait", already checked at its declaring
// line) and spec->body: the wait itself, behind a FunctionNode that runs the
// node's `when` first when it has one (`index` is the node's position in
// declaration order). A wait has no attempt timeout (its `timeout` is the
// signal's), so the policy's, from `defaults`, is dropped.
void BuildWait(const NodeDeclaration& node, int index, const std::shared_ptr<LuaStatePool>& pool,
               NodeSpec* spec);

}  // namespace keel
