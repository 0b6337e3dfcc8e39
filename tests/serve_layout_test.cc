// GET /api/v1/runs/ID/graph?layout=dot through the real binary: the graph
// JSON of `keel graph --format json` (map nodes with their item counts, in
// both) plus the Graphviz layout; a layout other than dot is refused; a run
// whose workflow file is gone still answers at once (from the recorded
// script) or with a JSON error, never a hang.

#include <doctest/doctest.h>
#include <unistd.h>

#include <string>

#include "tests/support/json.h"
#include "tests/support/sandbox.h"
#include "tests/support/serve_process.h"

namespace keel::testing {
namespace {

constexpr int kTimeoutS = 120;

const char* kMapFlow = R"(
local keel = require "keel"
return keel.workflow "mapped" {
  keel.fn "find" { run = function() return { 1, 2, 3, 4 } end },
  keel.map "double" {
    after = { "find" },
    over = function(ctx) return ctx.deps.find end,
    node = keel.fn {
      run = function(ctx)
        if ctx.item == 3 then error("three is refused") end
        return ctx.item * 2
      end,
    },
    tolerate = 0.5,
  },
  keel.fn "left" { after = { "find" }, run = function() return 1 end },
  keel.fn "join" { after = { "double", "left" }, run = function() return 2 end },
}
)";

Json Body(const httplib::Result& result, int status = 200) {
  REQUIRE(result);
  CHECK(result->status == status);
  return Json::Parse(result->body);
}

Json Node(const Json& graph, const std::string& name) {
  for (size_t i = 0; i < graph["nodes"].Size(); ++i) {
    if (graph["nodes"][i]["name"].Str() == name) return graph["nodes"][i];
  }
  return Json::Null();
}

}  // namespace

TEST_CASE("graph?layout=dot adds the layout to the graph JSON; maps carry their items" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  box.Write("mapped.lua", kMapFlow);
  auto run = box.KeelDb({"run", "mapped.lua"});
  REQUIRE_MESSAGE(run.exit_code == 3, run.Describe());  // degraded: one item failed
  std::string id = RunIdFromStderr(run.err);

  // The CLI's graph JSON carries the map's items.
  auto cli = box.KeelDb({"graph", id, "--format", "json"});
  REQUIRE_MESSAGE(cli.exit_code == 0, cli.Describe());
  Json cli_graph = Json::Parse(cli.out);
  Json items = Node(cli_graph, "double")["items"];
  REQUIRE(items.IsObject());
  CHECK(items["total"].Int() == 4);
  CHECK(items["succeeded"].Int() == 3);
  CHECK(items["failed"].Int() == 1);
  CHECK(items["running"].Int() == 0);
  CHECK(items["cancelled"].Int() == 0);
  CHECK(Node(cli_graph, "find")["items"].IsNull());

  ServeProcess serve(KEEL_BIN, box.dir(), box.db());
  auto client = serve.Client();
  Json plain = Body(client->Get("/api/v1/runs/" + id + "/graph"));
  CHECK(plain.Dump() == cli_graph.Dump());
  CHECK(plain["layout"].IsNull());

  Json laid = Body(client->Get("/api/v1/runs/" + id + "/graph?layout=dot"));
  CHECK(laid["workflow"].Str() == "mapped");
  double width = laid["layout"]["width"].Num();
  double height = laid["layout"]["height"].Num();
  CHECK(width > 0);
  CHECK(height > 0);
  REQUIRE(laid["nodes"].Size() == plain["nodes"].Size());
  for (size_t i = 0; i < laid["nodes"].Size(); ++i) {
    Json node = laid["nodes"][i];
    CAPTURE(node.Dump());
    CHECK(node["name"].Str() == plain["nodes"][i]["name"].Str());
    CHECK(node["status"].Str() == plain["nodes"][i]["status"].Str());
    CHECK(node["x"].Num() > 0);
    CHECK(node["x"].Num() < width);
    CHECK(node["y"].Num() > 0);
    CHECK(node["y"].Num() < height);
    CHECK(node["w"].Num() > 0);
    CHECK(node["h"].Num() > 0);
  }
  CHECK(Node(laid, "double")["items"]["failed"].Int() == 1);
  CHECK(Node(laid, "find")["x"].Num() < Node(laid, "join")["x"].Num());
  REQUIRE(laid["edges"].Size() == plain["edges"].Size());
  for (size_t i = 0; i < laid["edges"].Size(); ++i) {
    CHECK(laid["edges"][i]["path"].Str().starts_with("M"));
  }
  // Asked again: the same layout.
  Json again = Body(client->Get("/api/v1/runs/" + id + "/graph?layout=dot"));
  CHECK(again.Dump() == laid.Dump());

  Json bad = Body(client->Get("/api/v1/runs/" + id + "/graph?layout=neato"), 400);
  CHECK(bad["error"].Str().find("layout") != std::string::npos);
  Json missing = Body(client->Get("/api/v1/runs/nope/graph?layout=dot"), 404);
  CHECK(missing["error"].IsString());
}

TEST_CASE("a loop and a call stay one node each in the graph JSON, counting what ran inside" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  box.Write("rounds.lua", R"lua(local keel = require "keel"
keel.workflow "round" {
  keel.fn "output" { run = function(ctx) return { done = ctx.params.iteration >= 3 } end },
}
keel.workflow "one" {
  keel.fn "fetch" { run = function() return 1 end },
  keel.fn "output" { after = { "fetch" }, run = function() return 2 end },
}
return keel.workflow "rounds" {
  keel.loop "again" { workflow = "round", max_iterations = 5,
    done_when = function(out) return out.done end },
  keel.call "once" { workflow = "one" },
}
)lua");
  auto run = box.KeelDb({"run", "rounds.lua"});
  REQUIRE_MESSAGE(run.exit_code == 0, run.Describe());
  std::string id = RunIdFromStderr(run.err);
  auto cli = box.KeelDb({"graph", id, "--format", "json"});
  REQUIRE_MESSAGE(cli.exit_code == 0, cli.Describe());
  Json graph = Json::Parse(cli.out);
  REQUIRE(graph["nodes"].Size() == 2);
  Json again = Node(graph, "again")["inner"];
  REQUIRE(again.IsObject());
  CHECK(again["total"].Int() == 3);  // three rounds of one node
  CHECK(again["succeeded"].Int() == again["total"].Int());
  Json once = Node(graph, "once")["inner"];
  REQUIRE(once.IsObject());
  CHECK(once["total"].Int() == 2);
  CHECK(once["succeeded"].Int() == 2);
  // DOT still draws the inner nodes.
  auto dot = box.KeelDb({"graph", id});
  REQUIRE_MESSAGE(dot.exit_code == 0, dot.Describe());
  CHECK(dot.out.find("once/fetch") != std::string::npos);
}

TEST_CASE("a run whose workflow file is gone answers promptly" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  box.Write("mapped.lua", kMapFlow);
  auto run = box.KeelDb({"run", "mapped.lua"});
  REQUIRE_MESSAGE(run.exit_code == 3, run.Describe());  // degraded: one item failed
  std::string id = RunIdFromStderr(run.err);
  REQUIRE(unlink(box.Path("mapped.lua").c_str()) == 0);
  ServeProcess serve(KEEL_BIN, box.dir(), box.db());
  auto reply = serve.Client()->Get("/api/v1/runs/" + id + "/graph?layout=dot");
  REQUIRE(reply);
  CAPTURE(reply->body);
  Json body = Json::Parse(reply->body);
  if (reply->status == 200) {
    CHECK(body["layout"]["width"].Num() > 0);  // drawn from the recorded script
  } else {
    CHECK(reply->status >= 400);
    CHECK(body["error"].Str().find(id) != std::string::npos);
  }
}

}  // namespace keel::testing
