// keel.fn nodes that sleep or must be stopped: keel.sleep on a fake clock,
// cancellation of sleeping and looping nodes, the hook a node cannot
// remove, the memory cap, a script declaring differently on a later load,
// and Start from several threads.

#include <doctest/doctest.h>
#include <unistd.h>

#include <atomic>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/fakes/lua_flow.h"

namespace {

namespace fs = std::filesystem;
using keel::ErrorKind;
using keel::MakeJson;
using keel::NodeContext;
using keel::NodeResult;
using keel::NodeStatus;
using keel::testing::Flow;

TEST_CASE("keel.sleep yields and resumes on a posted closure after the clock advances") {
  Flow flow(R"(
  keel.fn "nap" { run = function(ctx)
    local before = ctx.attempt
    keel.sleep(1.5)
    keel.sleep(0)
    return before + 1
  end },
)");
  std::deque<std::function<void()>> posted;
  NodeContext ctx = flow.Context("nap");
  ctx.post = [&](std::function<void()> fn) { posted.push_back(std::move(fn)); };
  std::optional<NodeResult> result;
  flow.Body("nap")->Start(ctx, [&](NodeResult r) { result = std::move(r); });
  CHECK_FALSE(result.has_value());
  CHECK(flow.pool().free_count() == 0);  // the sleeping node keeps its state
  flow.clock.Advance(1.0);
  CHECK(posted.empty());
  flow.clock.Advance(0.6);
  REQUIRE(posted.size() == 1);  // the timer only posts; Lua resumes on the "worker"
  CHECK_FALSE(result.has_value());
  auto next = std::move(posted.front());
  posted.pop_front();
  next();
  CHECK_FALSE(result.has_value());  // now inside keel.sleep(0)
  flow.clock.Advance(0);
  REQUIRE(posted.size() == 1);
  posted.front()();
  REQUIRE(result.has_value());
  CHECK(*result->output == "2");
  CHECK(flow.pool().free_count() == 1);
}

TEST_CASE("sleeping nodes hold separate states; the pool grows on demand") {
  Flow flow(R"(
  keel.fn "nap" { run = function(ctx) keel.sleep(ctx.params.s) return ctx.params.s end },
)");
  std::vector<NodeContext> contexts;
  for (int i = 1; i <= 3; ++i) {
    contexts.push_back(flow.Context("nap"));
    contexts.back().params = MakeJson("{\"s\":" + std::to_string(i) + "}");
  }
  std::vector<std::string> outputs;
  for (NodeContext& ctx : contexts) {
    flow.Body("nap")->Start(ctx, [&](NodeResult r) { outputs.push_back(*r.output); });
  }
  CHECK(outputs.empty());
  CHECK(flow.pool().created() == 3);
  flow.clock.Advance(10);
  CHECK(outputs == std::vector<std::string>{"1", "2", "3"});
  CHECK(flow.pool().free_count() == 3);
}

TEST_CASE("keel.sleep is refused outside a node and inside a script's own coroutine") {
  Flow flow(R"(
  keel.fn "nested" { run = function()
    local co = coroutine.create(function() keel.sleep(1) end)
    local ok, err = coroutine.resume(co)
    error(err, 0)
  end },
  keel.fn "raw_yield" { run = function() coroutine.yield() end },
)");
  CHECK(flow.Run("nested").error.message().find(
            "keel.sleep cannot be used inside a coroutine the script created") !=
        std::string::npos);
  CHECK(flow.Run("raw_yield").error.message().find("yielded without keel.sleep") !=
        std::string::npos);

  std::string path = flow.dir() + "/top.lua";
  std::ofstream(path) << "local keel = require 'keel'\nkeel.sleep(1)\n";
  auto loaded = keel::LoadWorkflowFile(path, keel::LoadOptions{});
  REQUIRE_FALSE(loaded.ok());
  CHECK(loaded.status().message() ==
        path + ":2: keel.sleep can only be used inside a node's run or when function");
}

TEST_CASE("a cancelled token stops a sleeping node without resuming its Lua") {
  Flow flow(R"(
  keel.fn "nap" { run = function() keel.sleep(100) error("resumed") end },
)");
  std::optional<NodeResult> result;
  NodeContext ctx = flow.Context("nap");
  flow.Body("nap")->Start(ctx, [&](NodeResult r) { result = std::move(r); });
  flow.cancel.Cancel();
  flow.clock.Advance(1);  // the sleep wakes in slices to look at the token
  REQUIRE(result.has_value());
  CHECK(result->error.kind() == ErrorKind::kCancelled);
  CHECK(result->error.message() == "cancelled");
  CHECK(flow.pool().free_count() == 1);
}

TEST_CASE("cancellation stops an infinite loop, even one that catches errors" *
          doctest::timeout(30)) {
  std::string marker_dir = (fs::temp_directory_path() / "keel-spin-XXXXXX").string();
  marker_dir = mkdtemp(marker_dir.data());
  Flow flow("keel.fn 'spin' { run = function(ctx) io.open('" + marker_dir +
            "/' .. ctx.params.m, 'w'):close() while true do end end },\n"
            "keel.fn 'stubborn' { run = function(ctx) io.open('" +
            marker_dir +
            "/' .. ctx.params.m, 'w'):close()\n"
            "  while true do pcall(function() while true do end end) end end },\n"
            "keel.fn 'after' { run = function() return 'fine' end },");
  // The node creates the marker file only once its Lua code runs, so the
  // cancellation below must come through the instruction hook.
  auto run = [&](const std::string& node, const std::string& name) {
    keel::CancelToken fresh;
    std::optional<NodeResult> result;
    NodeContext ctx = flow.Context(node);
    ctx.cancel = &fresh;
    ctx.params = MakeJson("{\"m\":\"" + name + "\"}");
    std::thread worker(
        [&] { flow.Body(node)->Start(ctx, [&](NodeResult r) { result = std::move(r); }); });
    while (!fs::exists(marker_dir + "/" + name)) std::this_thread::yield();
    fresh.Cancel();
    worker.join();
    REQUIRE(result.has_value());
    CHECK(result->error.kind() == ErrorKind::kCancelled);
    CHECK(result->error.message() == "cancelled");
  };
  run("spin", "a");
  run("stubborn", "b");
  CHECK(flow.Output("after") == "\"fine\"");
  CHECK(flow.pool().created() == 1);
  fs::remove_all(marker_dir);
}

TEST_CASE("a node cannot remove the hook that stops it" * doctest::timeout(30)) {
  std::string marker_dir = (fs::temp_directory_path() / "keel-hook-XXXXXX").string();
  marker_dir = mkdtemp(marker_dir.data());
  Flow flow(
      "keel.fn 'unhook' { run = function(ctx)\n"
      "  local removed = pcall(debug.sethook)\n"
      "  io.open('" +
      marker_dir +
      "/ready', 'w'):close()\n"
      "  if removed then error('the hook was removed') end\n"
      "  while true do end end },");
  keel::CancelToken token;
  std::optional<NodeResult> result;
  NodeContext ctx = flow.Context("unhook");
  ctx.cancel = &token;
  std::thread worker(
      [&] { flow.Body("unhook")->Start(ctx, [&](NodeResult r) { result = std::move(r); }); });
  while (!fs::exists(marker_dir + "/ready")) std::this_thread::yield();
  token.Cancel();
  worker.join();
  REQUIRE(result.has_value());
  CHECK(result->error.kind() == ErrorKind::kCancelled);
  fs::remove_all(marker_dir);
}

TEST_CASE("the memory cap stops a runaway node; the pool keeps working") {
  Flow flow(R"(
  keel.fn "hog" { run = function()
    local t = {} while true do t[#t + 1] = string.rep('x', 1000) end
  end },
  keel.fn "fine" { run = function() return #string.rep('y', 100000) end },
)",
            8u << 20);
  NodeResult result = flow.Run("hog");
  REQUIRE(result.status == NodeStatus::kFailed);
  CHECK(result.error.ToString() == "error: memory limit of 8 MiB exceeded");
  CHECK(flow.pool().free_count() == 0);  // the bloated state was discarded
  CHECK(flow.Output("fine") == "100000");
  CHECK(flow.pool().created() == 2);
}

TEST_CASE("a script that declares differently when run again fails the extra state") {
  // math.random is seeded differently in every state, so each run of the
  // script names the node differently.
  Flow flow(R"(
  keel.fn ("nap" .. math.random(1, 1000000000)) { run = function() keel.sleep(1) return 1 end },
)");
  std::string name = flow.spec().nodes[0].name;
  std::deque<std::function<void()>> posted;
  NodeContext first = flow.Context(name);
  first.post = [&](std::function<void()> fn) { posted.push_back(std::move(fn)); };
  std::optional<NodeResult> first_result;
  flow.Body(name)->Start(first, [&](NodeResult r) { first_result = std::move(r); });
  NodeResult second = flow.Run(name);  // needs a second state
  CHECK(second.error.kind() == ErrorKind::kPermanent);
  CHECK(second.error.message() == flow.path() +
                                      ": running the script again declared different workflows "
                                      "or nodes; a script must declare the same ones every time "
                                      "it runs");
  flow.clock.Advance(1);
  REQUIRE(posted.size() == 1);
  posted.front()();
  REQUIRE(first_result.has_value());
  CHECK(*first_result->output == "1");
}

TEST_CASE("concurrent Start from several threads is safe" * doctest::timeout(60)) {
  Flow flow(R"(
  keel.fn "work" { run = function(ctx)
    local sum = 0
    for i = 1, 200 do sum = sum + i end
    if ctx.params.n == 0 then keel.log("n", ctx.params.n, { sum = sum }, print) end
    return { node = ctx.node, n = ctx.params.n, sum = sum }
  end },
)");
  constexpr int kRuns = 200;
  for (int threads_count : {1, 2, 6}) {
    CAPTURE(threads_count);
    std::atomic<int> succeeded{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < threads_count; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kRuns; ++i) {
          NodeContext ctx = flow.Context("work");
          int n = t * kRuns + i;
          ctx.params = MakeJson("{\"n\":" + std::to_string(n) + "}");
          std::optional<NodeResult> result;
          flow.Body("work")->Start(ctx, [&](NodeResult r) { result = std::move(r); });
          if (result && result->status == NodeStatus::kSucceeded &&
              *result->output ==
                  "{\"n\":" + std::to_string(n) + ",\"node\":\"work\",\"sum\":20100}") {
            ++succeeded;
          }
        }
      });
    }
    for (std::thread& thread : threads) thread.join();
    CHECK(succeeded == threads_count * kRuns);
    CHECK(flow.pool().created() <= 6);
    CHECK(flow.pool().free_count() == flow.pool().created());
  }
}

}  // namespace
