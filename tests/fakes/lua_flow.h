#pragma once
// Flow: a workflow of keel.fn nodes loaded from a temporary Lua file with a
// FakeClock, its nodes run by hand, for the function-node tests
// (function_node_test, function_node_stop_test). Test thread only, unless
// a test says otherwise.

#include <doctest/doctest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "engine/fake_clock.h"
#include "scripts/lua_state_pool.h"
#include "scripts/workflow_loader.h"

namespace keel::testing {

// The context of node `node` of run "run-1" of workflow "w", its params
// empty, cancelled by `cancel`, its closures posted to `post`.
inline NodeContext FlowContext(const std::string& node, CancelToken* cancel,
                               std::function<void(std::function<void()>)> post) {
  NodeContext ctx;
  ctx.run_id = "run-1";
  ctx.workflow = "w";
  ctx.node = node;
  ctx.params = MakeJson("{}");
  ctx.cancel = cancel;
  ctx.post = std::move(post);
  return ctx;
}

// Loads workflow 'w' made of `nodes` (Lua source of keel.fn declarations)
// from a temporary file, with a FakeClock, and runs its nodes by hand.
class Flow {
 public:
  explicit Flow(const std::string& nodes, size_t memory_limit = 64u << 20) {
    std::string pattern = (std::filesystem::temp_directory_path() / "keel-fn-XXXXXX").string();
    dir_ = mkdtemp(pattern.data());
    path_ = dir_ + "/flow.lua";
    std::ofstream(path_) << "local keel = require 'keel'\nreturn keel.workflow 'w' {\n"
                         << nodes << "\n}\n";
    LoadOptions options;
    options.clock = &clock;
    options.memory_limit = memory_limit;
    auto loaded = LoadWorkflowFile(path_, options);
    REQUIRE_MESSAGE(loaded.ok(), loaded.status().ToString());
    script_ = *loaded;
  }
  ~Flow() { std::filesystem::remove_all(dir_); }

  // A context whose post runs the closure at once.
  NodeContext Context(const std::string& node) {
    return FlowContext(node, &cancel, [](std::function<void()> fn) { fn(); });
  }

  const WorkflowSpec& spec() const { return script_->main_workflow(); }
  NodeBody* Body(const std::string& node) {
    return spec().nodes[spec().Find(node)].body.get();
  }

  // Starts `node` and returns its result, which must be ready when Start returns.
  NodeResult Run(const NodeContext& ctx) {
    std::optional<NodeResult> result;
    Body(ctx.node)->Start(ctx, [&](NodeResult r) { result = std::move(r); });
    REQUIRE(result.has_value());
    return *result;
  }
  NodeResult Run(const std::string& node) { return Run(Context(node)); }

  // The output of `node`, or "error: KIND: MESSAGE", or "skipped".
  std::string Output(const std::string& node) {
    NodeResult result = Run(node);
    if (result.status == NodeStatus::kSkipped) return "skipped";
    if (result.status != NodeStatus::kSucceeded) return "error: " + result.error.ToString();
    return *result.output;
  }

  LuaStatePool& pool() {
    return *std::static_pointer_cast<LuaStatePool>(script_->runtime);
  }
  const std::string& path() const { return path_; }
  const std::string& dir() const { return dir_; }

  FakeClock clock;
  CancelToken cancel;

 private:
  std::string dir_;
  std::string path_;
  std::shared_ptr<LoadedScript> script_;
};

}  // namespace keel::testing
