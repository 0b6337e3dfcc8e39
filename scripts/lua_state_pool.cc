#include "scripts/lua_state_pool.h"

#include <utility>

namespace keel {
namespace {

// Names and shape of everything declared, to check later runs of the script
// against the first one.
std::string Layout(const ScriptDeclarations& declarations) {
  std::string layout = std::to_string(declarations.main);
  for (const WorkflowDeclaration& workflow : declarations.workflows) {
    layout += "|" + workflow.name + ":";
    for (const NodeDeclaration& node : workflow.nodes) {
      layout += node.name + (node.has_run ? "+r" : "") + (node.has_when ? "+w" : "") + ",";
    }
  }
  return layout;
}

}  // namespace

Result<std::shared_ptr<LuaStatePool>> LuaStatePool::Create(ScriptSource source, size_t memory_limit,
                                                           Clock* clock,
                                                           ScriptDeclarations* declarations) {
  std::shared_ptr<LuaStatePool> pool(new LuaStatePool(std::move(source), memory_limit, clock));
  auto state = ScriptState::Create(pool->source_, memory_limit, declarations, nullptr,
                                   &pool->chunk_);
  if (!state.ok()) return state.status();
  pool->layout_ = Layout(*declarations);
  MutexLock lock(&pool->mu_);
  pool->created_ = 1;
  pool->free_.push_back(std::move(state).value());
  return pool;
}

Result<std::unique_ptr<ScriptState>> LuaStatePool::Checkout() {
  {
    MutexLock lock(&mu_);
    if (!free_.empty()) {
      std::unique_ptr<ScriptState> state = std::move(free_.back());
      free_.pop_back();
      return state;
    }
  }
  // Creating a state runs the script: do it without the lock.
  ScriptDeclarations declarations;
  auto state = ScriptState::Create(source_, memory_limit_, &declarations, &chunk_);
  if (!state.ok()) return state.status();
  if (Layout(declarations) != layout_) {
    return Status::Error(ErrorKind::kPermanent,
                         source_.chunk_name +
                             ": running the script again declared different workflows or nodes; "
                             "a script must declare the same ones every time it runs");
  }
  MutexLock lock(&mu_);
  ++created_;
  return state;
}

void LuaStatePool::Return(std::unique_ptr<ScriptState> state) {
  MutexLock lock(&mu_);
  free_.push_back(std::move(state));
}

size_t LuaStatePool::created() {
  MutexLock lock(&mu_);
  return created_;
}

size_t LuaStatePool::free_count() {
  MutexLock lock(&mu_);
  return free_.size();
}

}  // namespace keel
