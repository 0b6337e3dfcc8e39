// States after a script's first one replay it (scripts/declaration_replay.h):
// they load the chunk the first state compiled and declare keel.fn nodes
// without checking options. Their nodes must behave exactly as the first
// state's: own closures and upvalues, `require`d modules, `when`, line
// numbers in errors, and full checks for keel.fn called while a node runs.

#include <doctest/doctest.h>
#include <unistd.h>

#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>

#include "engine/fake_clock.h"
#include "scripts/lua_state_pool.h"
#include "scripts/workflow_loader.h"
#include "tests/fakes/lua_flow.h"

namespace {

namespace fs = std::filesystem;
using keel::MakeJson;
using keel::NodeContext;
using keel::NodeResult;
using keel::NodeStatus;

// Workflow 'w' made of `nodes`, in flow.lua next to `module` (mod.lua), with
// a node "hold" that keeps the first state busy so that every other node
// runs in a second, replaying state.
class ReplayFlow {
 public:
  ReplayFlow(const std::string& prelude, const std::string& nodes, const std::string& module) {
    std::string pattern = (fs::temp_directory_path() / "keel-replay-XXXXXX").string();
    dir_ = mkdtemp(pattern.data());
    path_ = dir_ + "/flow.lua";
    std::ofstream(dir_ + "/mod.lua") << module;
    std::ofstream(path_) << "local keel = require 'keel'\n"
                         << prelude
                         << "return keel.workflow 'w' {\n"
                            "  keel.fn 'hold' { run = function() keel.sleep(1) return 0 end },\n"
                         << nodes << "\n}\n";
    keel::LoadOptions options;
    options.clock = &clock;
    auto loaded = keel::LoadWorkflowFile(path_, options);
    REQUIRE_MESSAGE(loaded.ok(), loaded.status().ToString());
    script_ = *loaded;
  }
  ~ReplayFlow() { fs::remove_all(dir_); }

  NodeContext Context(const std::string& node) {
    return keel::testing::FlowContext(
        node, &cancel, [this](std::function<void()> fn) { posted.push_back(std::move(fn)); });
  }

  // Starts "hold", which keeps the first state until Release().
  void Hold() {
    hold_ctx_ = Context("hold");
    Body("hold")->Start(hold_ctx_, [this](NodeResult r) { hold_result = std::move(r); });
    REQUIRE(pool().free_count() == 0);
  }
  void Release() {
    clock.Advance(1);
    while (!posted.empty()) {
      auto next = std::move(posted.front());
      posted.pop_front();
      next();
    }
    REQUIRE(hold_result.has_value());
    CHECK(*hold_result->output == "0");
  }

  // The output of `node`, or "error: KIND: MESSAGE", or "skipped".
  std::string Output(const std::string& node) {
    std::optional<NodeResult> result;
    NodeContext ctx = Context(node);
    Body(node)->Start(ctx, [&](NodeResult r) { result = std::move(r); });
    REQUIRE(result.has_value());
    if (result->status == NodeStatus::kSkipped) return "skipped";
    if (result->status != NodeStatus::kSucceeded) return "error: " + result->error.ToString();
    return *result->output;
  }

  keel::LuaStatePool& pool() {
    return *std::static_pointer_cast<keel::LuaStatePool>(script_->runtime);
  }
  keel::NodeBody* Body(const std::string& node) {
    const keel::WorkflowSpec& spec = script_->main_workflow();
    return spec.nodes[spec.Find(node)].body.get();
  }
  const std::string& path() const { return path_; }

  keel::FakeClock clock;
  keel::CancelToken cancel;
  std::deque<std::function<void()>> posted;
  std::optional<NodeResult> hold_result;

 private:
  std::string dir_;
  std::string path_;
  NodeContext hold_ctx_;
  std::shared_ptr<keel::LoadedScript> script_;
};

TEST_CASE("a replaying state has its own closures, upvalues and required modules" *
          doctest::timeout(30)) {
  ReplayFlow flow(
      "local mod = require 'mod'\n"
      "local calls = 0\n"
      "local function counter() calls = calls + 1 return calls end\n",
      "  keel.fn 'count' { run = function() return counter() * 100 + mod.bump() end },\n",
      "local M = { n = 0 }\nfunction M.bump() M.n = M.n + 1 return M.n end\nreturn M\n");
  CHECK(flow.Output("count") == "101");  // first state, free
  CHECK(flow.Output("count") == "202");  // same state again: its upvalue and module
  flow.Hold();
  CHECK(flow.Output("count") == "101");  // second state: its own copies, from 1
  CHECK(flow.pool().created() == 2);
  CHECK(flow.Output("count") == "202");
  flow.Release();
}

TEST_CASE("a replaying state keeps when and the line numbers of errors" * doctest::timeout(30)) {
  ReplayFlow flow("",
                  "  keel.fn 'gated' { when = function() return false end,\n"
                  "                    run = function() return 1 end },\n"
                  "  keel.fn 'open' { when = function() return true end,\n"
                  "                   run = function() return 2 end },\n"
                  "  keel.fn 'boom' { run = function() error('boom') end },\n",
                  "return {}\n");
  flow.Hold();
  CHECK(flow.Output("gated") == "skipped");
  CHECK(flow.Output("open") == "2");
  std::string boom = flow.Output("boom");
  CHECK_MESSAGE(boom.find(flow.path() + ":8: boom") != std::string::npos, boom);
  CHECK(flow.pool().created() == 2);
  flow.Release();
}

TEST_CASE("keel.fn called by a node in a replaying state checks its options" *
          doctest::timeout(30)) {
  ReplayFlow flow("",
                  "  keel.fn 'declare' { run = function()\n"
                  "    local ok, err = pcall(keel.fn 'inner', { bogus = 1 })\n"
                  "    return tostring(ok) .. ' ' .. tostring(err)\n"
                  "  end },\n",
                  "return {}\n");
  std::string first = flow.Output("declare");
  CHECK_MESSAGE(first.find("false") == 1, first);
  CHECK_MESSAGE(first.find("unknown option 'bogus'") != std::string::npos, first);
  flow.Hold();
  CHECK(flow.Output("declare") == first);
  CHECK(flow.pool().created() == 2);
  flow.Release();
}

}  // namespace
