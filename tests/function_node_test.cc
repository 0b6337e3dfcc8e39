// keel.fn nodes run by hand: the JSON shapes run returns, ctx, `when`,
// error() and keel.fail, os.exit, outputs that cannot be JSON. Sleeping,
// cancellation, limits and concurrency are in function_node_stop_test.cc.

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

using keel::ErrorKind;
using keel::MakeJson;
using keel::NodeContext;
using keel::NodeResult;
using keel::NodeStatus;
using keel::testing::Flow;

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

}  // namespace
