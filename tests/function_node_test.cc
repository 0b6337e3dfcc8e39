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

#include "engine/fake_clock.h"
#include "scripts/lua_state_pool.h"
#include "scripts/workflow_loader.h"

namespace {

namespace fs = std::filesystem;
using keel::ErrorKind;
using keel::MakeJson;
using keel::NodeContext;
using keel::NodeResult;
using keel::NodeStatus;

// Loads workflow 'w' made of `nodes` (Lua source of keel.fn declarations)
// from a temporary file, with a FakeClock, and runs its nodes by hand.
class Flow {
 public:
  explicit Flow(const std::string& nodes, size_t memory_limit = 64u << 20) {
    std::string pattern = (fs::temp_directory_path() / "keel-fn-XXXXXX").string();
    dir_ = mkdtemp(pattern.data());
    path_ = dir_ + "/flow.lua";
    std::ofstream(path_) << "local keel = require 'keel'\nreturn keel.workflow 'w' {\n"
                         << nodes << "\n}\n";
    keel::LoadOptions options;
    options.clock = &clock;
    options.memory_limit = memory_limit;
    auto loaded = keel::LoadWorkflowFile(path_, options);
    REQUIRE_MESSAGE(loaded.ok(), loaded.status().ToString());
    script_ = *loaded;
  }
  ~Flow() { fs::remove_all(dir_); }

  // A context whose post runs the closure at once.
  NodeContext Context(const std::string& node) {
    NodeContext ctx;
    ctx.run_id = "run-1";
    ctx.workflow = "w";
    ctx.node = node;
    ctx.params = MakeJson("{}");
    ctx.cancel = &cancel;
    ctx.post = [](std::function<void()> fn) { fn(); };
    return ctx;
  }

  const keel::WorkflowSpec& spec() const { return script_->main_workflow(); }
  keel::NodeBody* Body(const std::string& node) {
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

  keel::LuaStatePool& pool() {
    return *std::static_pointer_cast<keel::LuaStatePool>(script_->runtime);
  }
  const std::string& path() const { return path_; }
  const std::string& dir() const { return dir_; }

  keel::FakeClock clock;
  keel::CancelToken cancel;

 private:
  std::string dir_;
  std::string path_;
  std::shared_ptr<keel::LoadedScript> script_;
};

TEST_CASE("run returns every JSON shape") {
  Flow flow(R"(
  keel.fn "n_nil" { run = function() return nil end },
  keel.fn "n_none" { run = function() end },
  keel.fn "n_true" { run = function() return true end },
  keel.fn "n_int" { run = function() return 42 end },
  keel.fn "n_float" { run = function() return 1.0 end },
  keel.fn "n_str" { run = function() return "h\u{e9}" end },
  keel.fn "n_list" { run = function() return { 1, "two", keel.null } end },
  keel.fn "n_obj" { run = function() return { b = { c = 2.5 }, a = false } end },
  keel.fn "n_empty" { run = function() return {} end },
  keel.fn "n_array" { run = function() return keel.array{} end },
  keel.fn "n_json" { run = function() return keel.json.decode('[{"x":[]}]') end },
)");
  CHECK(flow.Output("n_nil") == "null");
  CHECK(flow.Output("n_none") == "null");
  CHECK(flow.Output("n_true") == "true");
  CHECK(flow.Output("n_int") == "42");
  CHECK(flow.Output("n_float") == "1.0");
  CHECK(flow.Output("n_str") == "\"h\u00e9\"");
  CHECK(flow.Output("n_list") == "[1,\"two\",null]");
  CHECK(flow.Output("n_obj") == "{\"a\":false,\"b\":{\"c\":2.5}}");
  CHECK(flow.Output("n_empty") == "{}");
  CHECK(flow.Output("n_array") == "[]");
  CHECK(flow.Output("n_json") == "[{\"x\":[]}]");
  // One state served every call, reusing its coroutine.
  CHECK(flow.pool().created() == 1);
  CHECK(flow.pool().free_count() == 1);
}

TEST_CASE("ctx carries params, deps and the run's identity") {
  Flow flow(R"(
  keel.fn "look" { run = function(ctx)
    return { limit = ctx.params.limit, rows = ctx.deps.extract.rows, none = ctx.deps.gone,
             skipped = ctx.skipped, failed = ctx.failed, run_id = ctx.run_id, node = ctx.node,
             workflow = ctx.workflow, attempt = ctx.attempt, key = ctx.idempotency_key }
  end },
  keel.fn "mutate" { run = function(ctx) ctx.params.limit = 0; return ctx.params.limit end },
  keel.fn "fields" { run = function(ctx)
    local names = {}
    for k in pairs(ctx) do names[#names + 1] = k end
    table.sort(names)
    return names
  end },
  keel.fn "keep" { run = function(ctx) _G.kept = ctx end },
  keel.fn "use_kept" { run = function(ctx) return _G.kept.params end },
)");
  NodeContext ctx = flow.Context("look");
  ctx.params = MakeJson(R"({"limit":10})");
  ctx.deps = {{"extract", MakeJson(R"({"rows":[1,2]})")}, {"gone", MakeJson("null")}};
  ctx.skipped = {"maybe"};
  ctx.attempt = 3;
  NodeResult result = flow.Run(ctx);
  REQUIRE(result.status == NodeStatus::kSucceeded);
  CHECK(*result.output ==
        R"({"attempt":3,"failed":[],"key":"run-1/look","limit":10,"node":"look","rows":[1,2],)"
        R"("run_id":"run-1","skipped":["maybe"],"workflow":"w"})");
  // pairs(ctx) sees the fields that are built on first use.
  NodeContext listing = flow.Context("fields");
  CHECK(*flow.Run(listing).output ==
        R"(["attempt","deps","failed","idempotency_key","node","params","run_id","skipped",)"
        R"("workflow"])");
  // A ctx kept past its node's end cannot be used by another node.
  CHECK(*flow.Run("keep").output == "null");
  CHECK(flow.Run("use_kept").error.message().find("ctx can only be used while its node runs") !=
        std::string::npos);
  // Every execution decodes its own tables: one cannot change what the next sees.
  NodeContext mutate = flow.Context("mutate");
  mutate.params = ctx.params;
  CHECK(*flow.Run(mutate).output == "0");
  CHECK(*flow.Run(ctx).output == *result.output);
}

TEST_CASE("when decides whether run runs") {
  Flow flow(R"(
  keel.fn "no" { when = function(ctx) return false end, run = function() error("ran") end },
  keel.fn "nothing" { when = function(ctx) end, run = function() error("ran") end },
  keel.fn "yes" { when = function(ctx) return ctx.params.go end, run = function() return 1 end },
  keel.fn "bad" { when = function(ctx) error("when broke") end, run = function() return 1 end },
)");
  CHECK(flow.Output("no") == "skipped");
  CHECK(flow.Output("nothing") == "skipped");
  NodeContext ctx = flow.Context("yes");
  ctx.params = MakeJson(R"({"go":true})");
  CHECK(*flow.Run(ctx).output == "1");
  NodeResult bad = flow.Run("bad");
  CHECK(bad.status == NodeStatus::kFailed);
  CHECK(bad.error.message().find("when broke") != std::string::npos);
}

TEST_CASE("error() fails the node with its message and a traceback") {
  Flow flow(R"(
  keel.fn "boom" { run = function(ctx)
    local function inner() error("went wrong") end
    inner()
  end },
  keel.fn "table_error" { run = function() error({}) end },
)");
  NodeResult result = flow.Run("boom");
  REQUIRE(result.status == NodeStatus::kFailed);
  CHECK(result.error.kind() == ErrorKind::kError);
  const std::string& message = result.error.message();
  CHECK(message.rfind(flow.path() + ":5: went wrong\nstack traceback:", 0) == 0);
  CHECK(message.find("in local 'inner'") != std::string::npos);
  CHECK(flow.Run("table_error").error.message().rfind("(error object is a table value)", 0) == 0);
  // A failed execution drops its coroutine, not the state.
  CHECK(flow.pool().created() == 1);
  CHECK(flow.pool().free_count() == 1);
}

TEST_CASE("keel.fail carries an error kind and retry_after") {
  Flow flow(R"(
  keel.fn "transient" { run = function()
    keel.fail{ kind = "transient", message = "upstream said 503", retry_after = 2 } end },
  keel.fn "limited" { run = function() keel.fail{ kind = "rate_limited" } end },
  keel.fn "plain" { run = function() keel.fail("nope") end },
  keel.fn "typo" { run = function() keel.fail{ kind = "transiant" } end },
  keel.fn "caught" { run = function()
    local ok, err = pcall(keel.fail, { kind = "permanent", message = "bad input" })
    return tostring(err)
  end },
)");
  NodeResult transient = flow.Run("transient");
  CHECK(transient.error.kind() == ErrorKind::kTransient);
  CHECK(transient.error.message() == "upstream said 503");
  CHECK(transient.error.retry_after() == 2);
  NodeResult limited = flow.Run("limited");
  CHECK(limited.error.kind() == ErrorKind::kRateLimited);
  CHECK(limited.error.message() == "rate_limited");
  CHECK(limited.error.retry_after() < 0);
  CHECK(flow.Run("plain").error.ToString() == "error: nope");
  NodeResult typo = flow.Run("typo");
  CHECK(typo.error.kind() == ErrorKind::kError);
  CHECK(typo.error.message().find("keel.fail: unknown kind 'transiant' (did you mean "
                                  "'transient'?)") != std::string::npos);
  CHECK(flow.Output("caught") == "\"permanent: bad input\"");
}

TEST_CASE("keel.fail refuses unknown fields and ill-typed values at the caller's line") {
  Flow flow(R"(
  keel.fn "typo" { run = function()
    keel.fail{ kind = "transient", mesage = "typo" } end },
  keel.fn "positional" { run = function() keel.fail{ "oops" } end },
  keel.fn "kind_type" { run = function() keel.fail{ kind = 5 } end },
  keel.fn "message_type" { run = function() keel.fail{ message = {} } end },
  keel.fn "retry_inf" { run = function() keel.fail{ retry_after = math.huge } end },
  keel.fn "retry_neg" { run = function() keel.fail{ retry_after = -1 } end },
  keel.fn "sleep_inf" { run = function() keel.sleep(math.huge) end },
)");
  auto error = [&](const std::string& node) {
    NodeResult result = flow.Run(node);
    CHECK(result.error.kind() == ErrorKind::kError);
    const std::string& message = result.error.message();
    return message.substr(0, message.find('\n'));
  };
  const std::string at = flow.path() + ":";
  CHECK(error("typo") == at + "5: keel.fail: unknown field 'mesage' (did you mean 'message'?)");
  CHECK(error("positional") == at + "6: keel.fail: unexpected number key (the fields are kind, "
                                    "message and retry_after)");
  CHECK(error("kind_type") == at + "7: keel.fail: kind must be a string, got number");
  CHECK(error("message_type") == at + "8: keel.fail: message must be a string, got table");
  CHECK(error("retry_inf") ==
        at + "9: keel.fail: retry_after must be a number of seconds from 0 to 1e9, got inf");
  CHECK(error("retry_neg") ==
        at + "10: keel.fail: retry_after must be a number of seconds from 0 to 1e9, got -1");
  CHECK(error("sleep_inf") ==
        at + "11: keel.sleep expects a finite number of seconds, 0 or more, got inf");
}

// os.exit(7): were it to work, this test would end with that code, failed.
TEST_CASE("os.exit in a node fails the node; the process goes on") {
  Flow flow(R"(
  keel.fn "quit" { run = function() os.exit(7) end },
  keel.fn "after" { run = function() return "alive" end },
)");
  NodeResult quit = flow.Run("quit");
  CHECK(quit.status == NodeStatus::kFailed);
  CHECK(quit.error.message().rfind(
            flow.path() + ":4: os.exit is not available in keel scripts; use keel.fail or error()",
            0) == 0);
  CHECK(flow.Output("after") == "\"alive\"");
}

TEST_CASE("output that cannot be JSON names the node and the path") {
  Flow flow(R"(
  keel.fn "fnout" { run = function() return { a = print } end },
  keel.fn "nan" { run = function() return { x = { 0/0 } } end },
)");
  NodeResult result = flow.Run("fnout");
  CHECK(result.status == NodeStatus::kFailed);
  CHECK(result.error.ToString() == "error: output: at .a: a function cannot be JSON");
  CHECK(flow.Run("nan").error.message() == "output: at .x[1]: NaN cannot be JSON");
}

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
