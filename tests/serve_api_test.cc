// The JSON API of `keel serve` through real HTTP on loopback against the
// real binary: every read endpoint in the shapes of the CLI's --json (the
// listing byte for byte), paging, the write actions (signal, cancel,
// breaker reset) and their errors (unknown run 404, ambiguous prefix 400,
// bad JSON 400 naming the position, finished run 409), unknown routes and
// wrong methods.

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "tests/support/json.h"
#include "tests/support/sandbox.h"
#include "tests/support/serve_process.h"

namespace keel::testing {
namespace {

constexpr int kTimeoutS = 120;

const char* kTwoSteps = R"(
local keel = require "keel"
return keel.workflow "two" {
  keel.fn "a" { run = function() return 1 end },
  keel.fn "b" { after = { "a" }, run = function(ctx) return ctx.deps.a + 1 end },
}
)";

const char* kWaits = R"(
local keel = require "keel"
return keel.workflow "waits" {
  keel.fn "first" { run = function() return 1 end },
  keel.wait "approval" { after = { "first" }, signal = "approve" },
}
)";

Json Body(const httplib::Result& result) {
  REQUIRE(result);
  return Json::Parse(result->body);
}

// Sets up a database with two finished runs of "two" and a run of "waits"
// parked on its signal.
struct ApiFixture {
  Sandbox box{KEEL_BIN};
  std::string two_1, two_2, waiting;

  ApiFixture() {
    box.Write("two.lua", kTwoSteps);
    box.Write("waits.lua", kWaits);
    auto r1 = box.KeelDb({"run", "two.lua"});
    REQUIRE_MESSAGE(r1.exit_code == 0, r1.Describe());
    auto r2 = box.KeelDb({"run", "two.lua"});
    REQUIRE_MESSAGE(r2.exit_code == 0, r2.Describe());
    auto r3 = box.KeelDb({"run", "waits.lua"});
    REQUIRE_MESSAGE(r3.exit_code == 4, r3.Describe());
    two_1 = RunIdFromStderr(r1.err);
    two_2 = RunIdFromStderr(r2.err);
    waiting = RunIdFromStderr(r3.err);
  }
};

}  // namespace

TEST_CASE("GET /api/v1/runs is the listing of keel runs --json" * doctest::timeout(kTimeoutS)) {
  ApiFixture f;
  ServeProcess serve(KEEL_BIN, f.box.dir(), f.box.db());
  auto client = serve.Client();

  auto all = client->Get("/api/v1/runs?limit=100");
  REQUIRE(all);
  CHECK(all->status == 200);
  CHECK(all->get_header_value("Content-Type") == "application/json; charset=utf-8");
  auto cli = f.box.KeelDb({"runs", "--json", "--limit", "100"});
  REQUIRE(cli.exit_code == 0);
  CHECK(all->body + "\n" == cli.out);  // one serializer: the same bytes

  Json filtered = Body(client->Get("/api/v1/runs?workflow=two"));
  REQUIRE(filtered.Size() == 2);
  CHECK(filtered[0]["run_id"].Str() == f.two_2);  // newest first
  auto cli_filtered = f.box.KeelDb({"runs", "--json", "--workflow", "two"});
  CHECK(Json::Parse(cli_filtered.out).Dump() == filtered.Dump());

  Json waiting = Body(client->Get("/api/v1/runs?status=waiting"));
  REQUIRE(waiting.Size() == 1);
  CHECK(waiting[0]["run_id"].Str() == f.waiting);

  // Paging: limit and the before cursor walk every run once, newest first.
  Json page1 = Body(client->Get("/api/v1/runs?limit=2"));
  REQUIRE(page1.Size() == 2);
  Json page2 = Body(client->Get("/api/v1/runs?limit=2&before=" + page1[1]["run_id"].Str()));
  REQUIRE(page2.Size() == 1);
  CHECK(page2[0]["run_id"].Str() == f.two_1);
  Json page3 = Body(client->Get("/api/v1/runs?limit=2&before=" + f.two_1));
  CHECK(page3.Size() == 0);

  auto bad_limit = client->Get("/api/v1/runs?limit=abc");
  REQUIRE(bad_limit);
  CHECK(bad_limit->status == 400);
  CHECK(bad_limit->body.find("limit") != std::string::npos);
  auto bad_status = client->Get("/api/v1/runs?status=sleeping");
  REQUIRE(bad_status);
  CHECK(bad_status->status == 400);
  CHECK(bad_status->body.find("status") != std::string::npos);
  auto bad_cursor = client->Get("/api/v1/runs?before=nope");
  REQUIRE(bad_cursor);
  CHECK(bad_cursor->status == 400);
  // The limit is capped, not refused.
  auto huge = client->Get("/api/v1/runs?limit=100000000");
  REQUIRE(huge);
  CHECK(huge->status == 200);
}

TEST_CASE("GET one run, its events in pages, its graph; unknown and ambiguous ids" *
          doctest::timeout(kTimeoutS)) {
  ApiFixture f;
  ServeProcess serve(KEEL_BIN, f.box.dir(), f.box.db());
  auto client = serve.Client();

  Json run = Body(client->Get("/api/v1/runs/" + f.two_1));
  CHECK(run["run_id"].Str() == f.two_1);
  CHECK(run["status"].Str() == "succeeded");
  CHECK(run["nodes"].Size() == 2);
  CHECK(run["events"].IsNull());
  Json show = f.box.Show(f.two_1, true);
  CHECK(run["params"].Dump() == show["params"].Dump());
  CHECK(run["usage"].Dump() == show["usage"].Dump());
  CHECK(NodeEntry(run["nodes"], "b")["output"].Dump() == NodeEntry(show["nodes"], "b")["output"].Dump());

  Json with_events = Body(client->Get("/api/v1/runs/" + f.two_1 + "?events=true"));
  CHECK(with_events["events"].Dump() == show["events"].Dump());

  // A unique prefix works like the CLI's.
  Json by_prefix = Body(client->Get("/api/v1/runs/" + f.waiting.substr(0, f.waiting.size() - 1)));
  CHECK(by_prefix["run_id"].Str() == f.waiting);

  // Events in pages of 2 add up to the whole log, in order, each once.
  std::string collected;
  int64_t after = 0;
  int pages = 0;
  for (;;) {
    Json page = Body(client->Get("/api/v1/runs/" + f.two_1 + "/events?limit=2&after=" +
                                 std::to_string(after)));
    CHECK(page["run_id"].Str() == f.two_1);
    for (size_t i = 0; i < page["events"].Size(); ++i) {
      collected += (collected.empty() ? "" : ",") + page["events"][i].Dump();
    }
    ++pages;
    if (page["next_after"].IsNull()) break;
    after = page["next_after"].Int();
    REQUIRE(pages < 100);
  }
  CHECK("[" + collected + "]" == show["events"].Dump());
  CHECK(pages > 1);
  auto bad_after = client->Get("/api/v1/runs/" + f.two_1 + "/events?after=-1");
  REQUIRE(bad_after);
  CHECK(bad_after->status == 400);

  Json graph = Body(client->Get("/api/v1/runs/" + f.two_1 + "/graph"));
  CHECK(graph["workflow"].Str() == "two");
  REQUIRE(graph["nodes"].Size() == 2);
  CHECK(graph["nodes"][1]["name"].Str() == "b");
  CHECK(graph["nodes"][1]["status"].Str() == "succeeded");
  REQUIRE(graph["edges"].Size() == 1);
  CHECK(graph["edges"][0]["from"].Str() == "a");
  CHECK(graph["edges"][0]["to"].Str() == "b");
  auto cli_graph = f.box.KeelDb({"graph", f.two_1, "--format", "json"});
  CHECK(Json::Parse(cli_graph.out).Dump() == graph.Dump());

  for (const std::string& path : std::vector<std::string>{
           "/api/v1/runs/nope", "/api/v1/runs/nope/events", "/api/v1/runs/nope/graph"}) {
    CAPTURE(path);
    auto missing = client->Get(path);
    REQUIRE(missing);
    CHECK(missing->status == 404);
    CHECK(Json::Parse(missing->body)["error"].Str().find("no run 'nope'") != std::string::npos);
  }
  // Every run id here starts with the same date.
  auto ambiguous = client->Get("/api/v1/runs/" + f.two_1.substr(0, 2));
  REQUIRE(ambiguous);
  CHECK(ambiguous->status == 400);
  CHECK(ambiguous->body.find("ambiguous") != std::string::npos);
}

TEST_CASE("signal, cancel and breaker reset do what their CLI twins do" *
          doctest::timeout(kTimeoutS)) {
  ApiFixture f;
  ServeProcess serve(KEEL_BIN, f.box.dir(), f.box.db());
  auto client = serve.Client();
  const std::string run = "/api/v1/runs/" + f.waiting;

  auto bad = client->Post(run + "/signals/approve", "{\"ok\": tru}", "application/json");
  REQUIRE(bad);
  CHECK(bad->status == 400);
  CHECK(bad->body.find("at byte") != std::string::npos);

  auto sent = client->Post(run + "/signals/approve", "{\"by\": \"ada\"}", "application/json");
  REQUIRE(sent);
  CHECK(sent->status == 200);
  CHECK(Json::Parse(sent->body)["signal"].Str() == "approve");
  // The run, resumed by the CLI, takes the signal the API stored.
  auto resumed = f.box.KeelDb({"resume", f.waiting});
  CHECK_MESSAGE(resumed.exit_code == 0, resumed.Describe());
  CHECK(f.box.Show(f.waiting)["status"].Str() == "succeeded");

  // A finished run takes no signal and cannot be cancelled: 409.
  auto late = client->Post(run + "/signals/approve", "", "application/json");
  REQUIRE(late);
  CHECK(late->status == 409);
  auto finished = client->Post("/api/v1/runs/" + f.two_1 + "/cancel", "", "application/json");
  REQUIRE(finished);
  CHECK(finished->status == 409);

  // A parked run is cancelled at once.
  auto parked = f.box.KeelDb({"run", "waits.lua"});
  REQUIRE(parked.exit_code == 4);
  std::string parked_id = RunIdFromStderr(parked.err);
  auto cancelled = client->Post("/api/v1/runs/" + parked_id + "/cancel", "", "application/json");
  REQUIRE(cancelled);
  CHECK(cancelled->status == 200);
  Json outcome = Json::Parse(cancelled->body);
  CHECK(outcome["outcome"].Str() == "cancelled");
  CHECK(outcome["was"].Str() == "waiting");
  CHECK(f.box.Show(parked_id)["status"].Str() == "cancelled");
  auto unknown = client->Post("/api/v1/runs/nope/cancel", "", "application/json");
  REQUIRE(unknown);
  CHECK(unknown->status == 404);

  // Breakers: none yet; resetting an unknown key is 404, all of them 200.
  Json breakers = Body(client->Get("/api/v1/breakers"));
  CHECK(breakers.IsArray());
  CHECK(breakers.Dump() == Json::Parse(f.box.KeelDb({"breakers", "--json"}).out).Dump());
  auto no_key = client->Post("/api/v1/breakers/openai%3Agpt/reset", "", "application/json");
  REQUIRE(no_key);
  CHECK(no_key->status == 404);
  CHECK(no_key->body.find("no breaker 'openai:gpt'") != std::string::npos);
  auto all = client->Post("/api/v1/breakers/reset", "", "application/json");
  REQUIRE(all);
  CHECK(all->status == 200);
  CHECK(Json::Parse(all->body)["reset"].Int() == 0);
}

TEST_CASE("unknown routes are 404 and wrong methods 405, as JSON" * doctest::timeout(kTimeoutS)) {
  ApiFixture f;
  ServeProcess serve(KEEL_BIN, f.box.dir(), f.box.db());
  auto client = serve.Client();
  auto unknown = client->Get("/api/v1/nothing");
  REQUIRE(unknown);
  CHECK(unknown->status == 404);
  CHECK(Json::Parse(unknown->body)["error"].IsString());
  auto wrong = client->Delete("/api/v1/runs");
  REQUIRE(wrong);
  CHECK(wrong->status == 405);
  CHECK(wrong->get_header_value("Allow") == "GET, POST");  // POST runs starts one
  CHECK(Json::Parse(wrong->body)["error"].Str().find("DELETE") != std::string::npos);
  auto get_cancel = client->Get("/api/v1/runs/" + f.two_1 + "/cancel");
  REQUIRE(get_cancel);
  CHECK(get_cancel->status == 405);
  CHECK(get_cancel->get_header_value("Allow") == "POST");
}

}  // namespace keel::testing
