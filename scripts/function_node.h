#pragma once
// FunctionNode: the NodeBody of a `keel.fn` node.
//
// Start checks a ScriptState out of the pool, runs the node's `when` (if
// any) and then `run` on a coroutine of that state, and converts the first
// value `run` returns to JSON. keel.sleep yields the coroutine: a Clock
// timer fires later and the coroutine resumes through NodeContext::post on
// a worker, never on the timer thread. The state stays checked out while the
// node sleeps and goes back to the pool before `done` is called.
//
// Results: success with the JSON output (nil -> null); skipped when `when`
// returns a false value; kError with the Lua traceback for error(); the kind,
// message and retry_after of keel.fail; kCancelled when ctx.cancel fires (an
// instruction-count hook stops even `while true do end`); kError for output
// that cannot be JSON and for going over the state's memory limit (the state
// is then discarded).
//
// Thread-safety: Start may be called from several threads at once.

#include <memory>

#include "engine/workflow.h"
#include "nodes/agent_node.h"
#include "scripts/lua_state_pool.h"

namespace keel {

class FunctionNode final : public NodeBody {
 public:
  // `index` is the node's position in declaration order (see ScriptState);
  // `memory` caps the state while the node runs (0: the pool's limit).
  // With a `delegate` (an agent body), the node's Lua part is only its
  // `when`: once that says yes, the delegate does the node's work.
  FunctionNode(std::shared_ptr<LuaStatePool> pool, int index, size_t memory = 0,
               std::shared_ptr<NodeBody> delegate = nullptr)
      : pool_(std::move(pool)), index_(index), memory_(memory), delegate_(std::move(delegate)) {}

  void Start(const NodeContext& ctx, NodeCompletion done) override;
  // The instruction hook and keel.sleep both honour ctx.deadline.
  bool EnforcesDeadline() const override { return true; }

 private:
  const std::shared_ptr<LuaStatePool> pool_;
  const int index_;
  const size_t memory_;
  const std::shared_ptr<NodeBody> delegate_;
};

// Which function of a node an execution runs.
enum class NodeFunctionKind {
  kRun,       // `when`, then `run`
  kValue,     // a map's or call's `when`, then its `over` / `params` (null without one)
  kDoneWhen,  // a loop's done_when(arg, ctx)
};
// Runs `function` of node `index` on a state of the pool, as a function
// node runs `run`: the first value it returns, as JSON, is the result.
// Thread-safety: any thread, concurrently.
void StartNodeFunction(const std::shared_ptr<LuaStatePool>& pool, int index,
                       NodeFunctionKind function, const NodeContext& ctx, JsonText arg,
                       NodeCompletion done);

// Runs the tools of agent node `index` (their `run` functions, called as
// run(ctx, args)) on states of the pool, like function nodes: as coroutines
// that may wait, under the node's memory cap, stopped by its cancel token and
// deadline. Thread-safety: Run may be called from several threads at once.
class LuaToolRunner final : public ToolRunner {
 public:
  LuaToolRunner(std::shared_ptr<LuaStatePool> pool, int index, size_t memory)
      : pool_(std::move(pool)), index_(index), memory_(memory) {}

  void Run(const NodeContext& ctx, const std::string& name, JsonText arguments,
           NodeCompletion done) override;

 private:
  const std::shared_ptr<LuaStatePool> pool_;
  const int index_;
  const size_t memory_;
};

}  // namespace keel
