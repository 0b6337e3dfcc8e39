// The dashboard's reads over real HTTP on loopback: GET runs/ID/nodes/NAME
// (ledger, input, output, truncation at 64 KiB, names needing URL
// encoding), its /output, /input/DEP and /items sub-resources (paged in the
// store), the runs list's live state and since filters, and the breakers'
// figures; with bad input answered 400 or 404 naming what was wrong. Runs
// come from the real `keel` binary, or are written through a SqliteStore
// when their names cannot come from a workflow (spaces, '#').

#include <doctest/doctest.h>
#include <httplib.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "engine/circuit_breaker.h"
#include "store/sqlite/sqlite_store.h"
#include "service/nodes_api.h"
#include "service/runs_api.h"
#include "service/service_options.h"
#include "tests/support/files.h"
#include "tests/support/json.h"
#include "tests/support/keel_cli.h"
#include "tests/support/sandbox.h"
#include "tests/support/subprocess.h"

namespace keel::testing {
namespace {

constexpr int kTimeoutS = 180;

// RunsApi and NodesApi over the sandbox's database on a loopback port.
class TestServer {
 public:
  explicit TestServer(const Sandbox& box) {
    options_.db = box.db();
    options_.keel_path = KEEL_BIN;
    options_.workflows = box.dir();
    auto store = SqliteStore::Open(options_.db, {});
    REQUIRE_MESSAGE(store.ok(), store.status().message());
    store_ = std::move(store).value();
    runs_ = std::make_unique<service::RunsApi>(options_, *store_);
    nodes_ = std::make_unique<service::NodesApi>(options_, *store_);
    runs_->Register(http_);
    nodes_->Register(http_);
    port_ = http_.bind_to_any_port("127.0.0.1");
    REQUIRE(port_ > 0);
    thread_ = std::thread([this] { http_.listen_after_bind(); });
  }
  ~TestServer() {
    http_.stop();
    thread_.join();
  }

  // GET `path` (already encoded); status and body.
  std::pair<int, std::string> Get(const std::string& path) {
    httplib::Client client("127.0.0.1", port_);
    client.set_read_timeout(60, 0);
    auto result = client.Get(path.c_str());
    REQUIRE_MESSAGE(result, "no answer to GET " << path);
    return {result->status, result->body};
  }
  Json GetJson(const std::string& path, int want = 200) {
    std::pair<int, std::string> reply = Get(path);
    CHECK_MESSAGE(reply.first == want, path << " answered " << reply.first << ": " << reply.second);
    return Json::Parse(reply.second);
  }

  SqliteStore& store() { return *store_; }

 private:
  service::ServiceOptions options_;
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<service::RunsApi> runs_;
  std::unique_ptr<service::NodesApi> nodes_;
  httplib::Server http_;
  int port_ = 0;
  std::thread thread_;
};

constexpr const char* kMapRun = R"lua(local keel = require "keel"
local sub = keel.workflow "sub" {
  keel.fn "fetch" { run = function() return "fetched" end },
  keel.fn "output" { after = { "fetch" }, run = function(ctx) return ctx.deps.fetch end },
}
return keel.workflow "w" {
  keel.fn "list" { run = function() local t = {} for i = 1, 25 do t[i] = i end return t end },
  keel.map "m" {
    after = { "list" },
    over = function(ctx) return ctx.deps.list end,
    max_concurrency = 4,
    tolerate = 0.5,
    node = keel.fn { run = function(ctx)
      if ctx.item % 10 == 0 then keel.fail{ kind = "permanent", message = "item " .. ctx.item .. " is bad" } end
      return ctx.item * 2
    end },
  },
  keel.call "c" { after = { "list" }, workflow = sub },
  keel.fn "sink" { after = { "m", "c" }, run = function(ctx) return { c = ctx.deps.c } end },
}
)lua";

std::string RunScript(const Sandbox& box, const std::string& name, const std::string& text) {
  ExitInfo run = box.KeelDb({"run", box.Write(name, text)});
  std::string id = RunIdFromStderr(run.err);
  REQUIRE_MESSAGE(!id.empty(), run.Describe());
  return id;
}

}  // namespace

TEST_CASE("a node of a real map run: ledger, input, output, inner nodes and paged items" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string id = RunScript(box, "map.lua", kMapRun);
  TestServer server(box);
  const std::string base = "/api/v1/runs/" + id + "/nodes/";

  Json sink = server.GetJson(base + "sink");
  CHECK(sink["node"].Str() == "sink");
  CHECK(sink["status"].Str() == "succeeded");
  REQUIRE(sink["attempts"].Size() == 1);
  CHECK(sink["attempts"][0]["outcome"].Str() == "succeeded");
  CHECK(sink["attempts"][0]["decided_by"].IsNull());
  CHECK(sink["why"].IsNull());
  // Its input is what its dependencies recorded, found through the workflow.
  CHECK(sink["input"]["c"].Str() == "fetched");
  CHECK(sink["input"]["m"].Size() == 25);
  CHECK(sink["output"].Dump() == R"({"c":"fetched"})");
  CHECK(sink["truncated"].Size() == 0);
  CHECK(sink["events"].Size() >= 2);
  CHECK(server.Get(base + "sink/output").second == R"({"c":"fetched"})");
  CHECK(Json::Parse(server.Get(base + "sink/input/m").second).Size() == 25);
  auto [no_dep, no_dep_body] = server.Get(base + "sink/input/list");
  CHECK(no_dep == 404);
  CHECK(no_dep_body.find("no dependency 'list' of node 'sink'") != std::string::npos);

  // Item and inner node names, encoded and not.
  Json item = server.GetJson(base + "m%5B3%5D");
  CHECK(item["node"].Str() == "m[3]");
  CHECK(item["kind"].Str() == "item");
  CHECK(item["status"].Str() == "succeeded");
  Json bad_item = server.GetJson(base + "m%5B10%5D");
  CHECK(bad_item["status"].Str() == "failed");
  REQUIRE(bad_item["attempts"].Size() >= 1);
  CHECK(bad_item["attempts"][0]["message"].Str() == "item 10 is bad");
  CHECK(server.GetJson(base + "c%2Ffetch")["output"].Str() == "fetched");
  CHECK(server.GetJson(base + "c/fetch")["node"].Str() == "c/fetch");

  auto [unknown, unknown_body] = server.Get(base + "nope");
  CHECK(unknown == 404);
  CHECK(unknown_body.find("no node 'nope' in run " + id) != std::string::npos);
  CHECK(server.Get(base + "nope/items").first == 404);
  CHECK(server.Get("/api/v1/runs/zzzz/nodes/sink").first == 404);

  // Items, paged in index order.
  Json page = server.GetJson(base + "m/items?limit=10");
  CHECK(page["total"].Int() == 25);
  REQUIRE(page["items"].Size() == 10);
  for (size_t i = 0; i + 1 < 10; ++i) {
    CHECK(page["items"][i]["index"].Int() + 1 == page["items"][i + 1]["index"].Int());
  }
  int64_t first = page["items"][0]["index"].Int();
  CHECK(page["items"][0]["node"].Str() == "m[" + std::to_string(first) + "]");
  Json last = server.GetJson(base + "m/items?offset=20&limit=10");
  CHECK(last["items"].Size() == 5);
  CHECK(last["items"][4]["index"].Int() == first + 24);
  Json failed = server.GetJson(base + "m/items?status=failed");
  CHECK(failed["total"].Int() == 2);
  CHECK(failed["items"][0]["error"].Str().find("is bad") != std::string::npos);
  for (const char* query : {"limit=0", "limit=1001", "offset=-1", "offset=x", "limit="}) {
    auto [code, body] = server.Get(base + "m/items?" + query);
    CHECK_MESSAGE(code == 400, query);
    CHECK(body.find(query[0] == 'l' ? "limit" : "offset") != std::string::npos);
  }
  auto [bad_status, bad_status_body] = server.Get(base + "m/items?status=nope");
  CHECK(bad_status == 400);
  CHECK(bad_status_body.find("pending, running, succeeded") != std::string::npos);

  // The run with its items collapsed into the map's counts, read in SQL.
  Json outline = server.GetJson("/api/v1/runs/" + id + "?items=false");
  Json full = server.GetJson("/api/v1/runs/" + id);
  CHECK(NodeEntry(full["nodes"], "m[1]").IsObject());
  CHECK(NodeEntry(outline["nodes"], "m[1]").IsNull());
  CHECK(NodeEntry(outline["nodes"], "c/fetch").IsObject());
  Json map = NodeEntry(outline["nodes"], "m");
  CHECK(map["items"]["total"].Int() == 25);
  CHECK(map["items"]["succeeded"].Int() == 23);
  CHECK(map["items"]["failed"].Int() == 2);
  CHECK(map["items"].Dump() == NodeEntry(full["nodes"], "m")["items"].Dump());
  CHECK(outline["usage"].Dump() == full["usage"].Dump());
  ExitInfo shown = box.KeelDb({"show", id});
  CHECK(shown.out.find("25 items: 23 succeeded, 2 failed") != std::string::npos);

  // The same object from the CLI.
  ExitInfo cli = box.KeelDb({"show", id, "--node", "sink", "--json"});
  REQUIRE_MESSAGE(cli.exit_code == 0, cli.Describe());
  CHECK(Json::Parse(cli.out)["input"]["c"].Str() == "fetched");
  ExitInfo text = box.KeelDb({"show", id, "--node", "m[10]"});
  CHECK(text.out.find("item 10 is bad") != std::string::npos);
  ExitInfo missing = box.KeelDb({"show", id, "--node", "nope"});
  CHECK(missing.exit_code != 0);
  CHECK(missing.err.find("no node 'nope'") != std::string::npos);
}

TEST_CASE("names that need URL encoding, and values truncated at 64 KiB" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  box.KeelDb({"runs"});  // creates nothing; the store below creates the database
  TestServer server(box);
  RunRecord run;
  run.id = "r-odd";
  run.workflow = "w";
  run.script_path = "/nowhere.lua";
  run.created_at = run.updated_at = 1796472000;
  REQUIRE(server.store().CreateRun(run).ok());
  auto save = [&](const std::string& name, std::string output) {
    NodeRecord node;
    node.run_id = run.id;
    node.node = name;
    node.status = NodeStatus::kSucceeded;
    node.attempts = 1;
    node.output_json = std::move(output);
    node.started_at = 1796472001;
    node.finished_at = 1796472002;
    server.store().SaveNode(node);
  };
  const std::string odd = "odd name #1 [x]/y%z";
  save(odd, "1");
  save("edge", "\"" + std::string(65534, 'a') + "\"");
  save("big", "\"" + std::string(65535, 'b') + "\"");
  server.store().AppendEvent({run.id, 0, 1796472001, odd, "node_started", R"({"attempt":1})"});
  REQUIRE(server.store().Flush().ok());

  const std::string base = "/api/v1/runs/r-odd/nodes/";
  Json node = server.GetJson(base + "odd%20name%20%231%20%5Bx%5D%2Fy%25z");
  CHECK(node["node"].Str() == odd);
  CHECK(node["output"].Int() == 1);
  CHECK(node["events"].Size() == 1);
  CHECK(server.Get(base + "odd%20name%20%231%20%5Bx%5D%2Fy%25z/output").second == "1");
  CHECK(server.Get(base + "bad%2").first == 400);

  Json edge = server.GetJson(base + "edge");  // exactly 65536 bytes: kept
  CHECK(edge["output"].Str().size() == 65534);
  CHECK(edge["truncated"].Size() == 0);
  Json big = server.GetJson(base + "big");  // 65537 bytes: cut
  CHECK(big["output"]["$truncated"].Int() == 65537);
  CHECK(big["output"]["preview"].Str().size() == 2048);
  REQUIRE(big["truncated"].Size() == 1);
  CHECK(big["truncated"][0].Str() == "output");
  CHECK(server.Get(base + "big/output").second.size() == 65537);
}

TEST_CASE("the runs list: live states, waiting_for, since, and bad filters" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string done = RunScript(box, "map.lua", kMapRun);
  std::string waiting =
      RunScript(box, "approval.lua",
                ReadFile(std::string(KEEL_SOURCE_DIR) + "/examples/approval.lua").value_or(""));
  TestServer server(box);

  Json all = server.GetJson("/api/v1/runs");
  REQUIRE(all.Size() == 2);
  for (size_t i = 0; i < all.Size(); ++i) {
    if (all[i]["run_id"].Str() == done) {
      CHECK(all[i]["state"].IsNull());
    } else {
      CHECK(all[i]["state"].Str() == "waiting_signal");
      CHECK(all[i]["waiting_for"].Str() == "approve");
    }
  }
  Json parked = server.GetJson("/api/v1/runs?state=waiting_signal");
  REQUIRE(parked.Size() == 1);
  CHECK(parked[0]["run_id"].Str() == waiting);
  CHECK(server.GetJson("/api/v1/runs?state=backing_off").Size() == 0);
  CHECK(server.GetJson("/api/v1/runs?since=2000-01-01T00:00:00Z").Size() == 2);
  CHECK(server.GetJson("/api/v1/runs?since=2999-01-01").Size() == 0);

  auto [bad_state, bad_state_body] = server.Get("/api/v1/runs?state=sleepy");
  CHECK(bad_state == 400);
  CHECK(bad_state_body.find("query parameter state 'sleepy': expected queued, running, "
                            "retrying, backing_off") != std::string::npos);
  auto [bad_since, bad_since_body] = server.Get("/api/v1/runs?since=yesterday");
  CHECK(bad_since == 400);
  CHECK(bad_since_body.find("query parameter since") != std::string::npos);

  // The same from the CLI.
  ExitInfo cli = box.KeelDb({"runs", "--state", "waiting_signal", "--json"});
  REQUIRE_MESSAGE(cli.exit_code == 0, cli.Describe());
  CHECK(Json::Parse(cli.out).Size() == 1);
  ExitInfo bad = box.KeelDb({"runs", "--state", "sleepy"});
  CHECK(bad.exit_code != 0);
  CHECK(bad.err.find("--state 'sleepy': expected") != std::string::npos);
  // The waiting node says why.
  Json approval = server.GetJson("/api/v1/runs/" + waiting + "/nodes/approval");
  CHECK(approval["why"].Str().find("waiting for signal approve") == 0);
  Json publish = server.GetJson("/api/v1/runs/" + waiting + "/nodes/publish");
  CHECK(publish["status"].Str() == "pending");
  CHECK(publish["why"].Str() == "waiting on approval, cool_off");
}

TEST_CASE("a run backing off before its retry: its live state and its node's why" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("slow_retry.lua", R"lua(local keel = require "keel"
return keel.workflow "slow_retry" {
  keel.fn "flaky" {
    retry = { attempts = 2, base = 120, jitter = "none" },
    run = function() keel.fail{ kind = "transient", message = "upstream down" } end,
  },
  keel.fn "after" { after = { "flaky" }, run = function() return 1 end },
}
)lua");
  auto run = box.StartDb({"run", wf});
  REQUIRE(run->WaitForStderr("started", std::chrono::seconds(60)));
  TestServer server(box);
  // Polls (the run's retry waits two minutes; the test ends well before).
  Json listed = Json::Null();
  for (int i = 0; i < 600; ++i) {
    listed = server.GetJson("/api/v1/runs?state=backing_off");
    if (listed.Size() == 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  REQUIRE(listed.Size() == 1);
  CHECK(listed[0]["status"].Str() == "running");
  CHECK(listed[0]["state"].Str() == "backing_off");
  CHECK(!listed[0]["state_until"].IsNull());
  const std::string id = listed[0]["run_id"].Str();
  Json flaky = server.GetJson("/api/v1/runs/" + id + "/nodes/flaky");
  CHECK(flaky["status"].Str() == "running");
  CHECK(flaky["why"].Str().find("backing off until ") == 0);
  CHECK(flaky["why"].Str().find("(attempt 1 failed: transient)") != std::string::npos);
  REQUIRE(flaky["attempts"].Size() == 1);
  CHECK(flaky["attempts"][0]["outcome"].Str() == "failed");
  CHECK(flaky["attempts"][0]["decided_by"].Str() == "retry");
  CHECK(flaky["attempts"][0]["next"].Str().find("retry at ") == 0);
  Json after = server.GetJson("/api/v1/runs/" + id + "/nodes/after");
  CHECK(after["why"].Str() == "waiting on flaky");
  ExitInfo cli = box.KeelDb({"runs", "--state", "backing_off"});
  CHECK(cli.out.find("running, backing_off") != std::string::npos);
  // The graph (the dashboard's DAG) says so of the node, not just "running".
  ExitInfo graph = box.KeelDb({"graph", id, "--format", "json"});
  REQUIRE_MESSAGE(graph.exit_code == 0, graph.Describe());
  Json nodes = Json::Parse(graph.out)["nodes"];
  auto NodeNamed = [&nodes](const std::string& name) {
    for (size_t i = 0; i < nodes.Size(); ++i) {
      if (nodes[i]["name"].Str() == name) return nodes[i];
    }
    return Json::Null();
  };
  CHECK(NodeNamed("flaky")["state"].Str() == "backing_off");
  CHECK(!NodeNamed("flaky")["until"].IsNull());
  CHECK(NodeNamed("after")["status"].Str() == "pending");
  CHECK(NodeNamed("after")["state"].IsNull());
  run->Kill();
}

TEST_CASE("breakers show their thresholds, window counts and next probe time" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  box.KeelDb({"runs"});
  TestServer server(box);
  BreakerConfig config;
  config.key = "llm:fast";
  config.failures = 2;
  config.failure_rate = 0.5;
  config.window = 60;
  config.min_calls = 4;
  config.cooldown = 30;
  double now = 1796400000;  // 2026-12-04 16:00:00 UTC, in the past
  for (int i = 0; i < 2; ++i) {
    auto updated = server.store().UpdateBreaker(config.key, [&](BreakerSnapshot& s) {
      ProbeClaim claim;
      claim.id = i + 1;
      double retry_in = 0;
      BreakerTransition transition;
      Admit(s, config, now + i, claim, &retry_in, &transition);
      RecordOutcome(s, config, false, int64_t{0}, now + i);
    });
    REQUIRE(updated.ok());
  }
  Json breakers = server.GetJson("/api/v1/breakers");
  REQUIRE(breakers.Size() == 1);
  Json b = breakers[0];
  CHECK(b["state"].Str() == "open");
  CHECK(b["failure_threshold"].Int() == 2);
  CHECK(b["failure_rate"].Num() == doctest::Approx(0.5));
  CHECK(b["window_s"].Num() == doctest::Approx(60));
  CHECK(b["min_calls"].Int() == 4);
  CHECK(b["next_probe_at"].Str() == "2026-12-04T16:00:31.000Z");
  // The window is counted at the time of the request, long after these calls.
  CHECK(b["window_calls"].Int() == 0);
  ExitInfo cli = box.KeelDb({"breakers", "--json"});
  CHECK(Json::Parse(cli.out)[0]["failure_threshold"].Int() == 2);
}

}  // namespace keel::testing
