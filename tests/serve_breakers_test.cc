// `keel serve`'s breaker endpoints against the real binary: POST
// breakers/KEY/force-open, /disable and /close do what `keel breakers
// --force-open` ... do, an unknown key is 404 with a suggestion, a
// cross-site POST is refused, GET breakers?summary=true is `keel breakers
// --json --summary` (one serializer), and /metrics has every state, slow
// calls and timeouts per breaker.

#include <doctest/doctest.h>

#include <map>
#include <sstream>
#include <string>

#include "tests/support/json.h"
#include "tests/support/sandbox.h"
#include "tests/support/serve_process.h"

namespace keel::testing {
namespace {

constexpr int kTimeoutS = 120;

// "api" succeeds; "slowsvc" succeeds slowly (each call a slow one);
// "late" times out on each of its two attempts.
const char* kFlow = R"(
local keel = require "keel"
return keel.workflow "ops" {
  keel.fn "call" { circuit = { key = "api" }, run = function() return "ok" end },
  keel.fn "crawl" {
    circuit = { key = "slowsvc", slow = { seconds = 0.05, rate = 1 }, min_calls = 100 },
    run = function() keel.sleep(0.1) return "late but fine" end,
  },
  keel.fn "stuck" {
    circuit = { key = "late", failures = 10 },
    timeout = 0.05,
    retry = { attempts = 2, base = 0.01, max = 0.02 },
    optional = true,
    run = function() keel.sleep(5) end,
  },
}
)";

Json Body(const httplib::Result& result, int status) {
  REQUIRE(result);
  INFO(result->body);
  CHECK(result->status == status);
  return Json::Parse(result->body);
}

// The samples of a Prometheus exposition: "name{labels}" to value.
std::map<std::string, double> Samples(const std::string& text) {
  std::map<std::string, double> samples;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line[0] == '#') continue;
    size_t space = line.rfind(' ');
    samples[line.substr(0, space)] = std::stod(line.substr(space + 1));
  }
  return samples;
}

}  // namespace

TEST_CASE("POST breakers/KEY/force-open, /disable and /close" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  box.Write("ops.lua", kFlow);
  ExitInfo run = box.KeelDb({"run", "ops.lua"});
  REQUIRE_MESSAGE(run.exit_code == 3, run.Describe());  // degraded: "stuck" is optional
  ServeProcess serve(KEEL_BIN, box.dir(), box.db());
  auto client = serve.Client();

  Json forced = Body(client->Post("/api/v1/breakers/api/force-open", "", "application/json"), 200);
  CHECK(forced.Dump() ==
        Json::Parse(R"({"key":"api","state":"forced_open","was":"closed","changed":true})").Dump());
  Json again = Body(client->Post("/api/v1/breakers/api/force-open", "", "application/json"), 200);
  CHECK(again["changed"].Bool() == false);
  CHECK(again["was"].Str() == "forced_open");
  // The CLI sees what the API did.
  CHECK(box.KeelDb({"breakers", "--close", "api"}).out == "breaker api closed (was forced open)\n");

  Json disabled = Body(client->Post("/api/v1/breakers/late/disable", "", "application/json"), 200);
  CHECK(disabled["state"].Str() == "disabled");
  Json closed = Body(client->Post("/api/v1/breakers/late/close", "", "application/json"), 200);
  CHECK(closed["state"].Str() == "closed");
  CHECK(closed["was"].Str() == "disabled");

  // An unknown key: 404 naming it, with the key it was probably meant to be,
  // and no breaker made for it.
  for (const char* action : {"force-open", "disable", "close"}) {
    Json unknown = Body(
        client->Post(std::string("/api/v1/breakers/apj/") + action, "", "application/json"), 404);
    CHECK(unknown["error"].Str() == "no breaker 'apj' (did you mean 'api'?)");
  }
  CHECK(Body(client->Get("/api/v1/breakers"), 200).Size() == 3);

  // The guard of every write: a cross-site POST changes nothing.
  auto evil = client->Post("/api/v1/breakers/api/force-open", {{"Origin", "http://evil.example"}},
                           "", "application/json");
  REQUIRE(evil);
  CHECK(evil->status == 403);
  auto get = client->Get("/api/v1/breakers/api/close");
  REQUIRE(get);
  CHECK(get->status == 405);
  Json list = Body(client->Get("/api/v1/breakers"), 200);
  for (size_t i = 0; i < list.Size(); ++i) CHECK(list[i]["state"].Str() == "closed");
}

TEST_CASE("GET breakers carries the statistics and ?summary=true the aggregate" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  box.Write("ops.lua", kFlow);
  ExitInfo run = box.KeelDb({"run", "ops.lua"});
  REQUIRE_MESSAGE(run.exit_code == 3, run.Describe());
  REQUIRE(box.KeelDb({"breakers", "--force-open", "api"}).exit_code == 0);
  ServeProcess serve(KEEL_BIN, box.dir(), box.db());
  auto client = serve.Client();

  Json both = Body(client->Get("/api/v1/breakers?summary=true"), 200);
  // No breaker is open, so nothing in it depends on the time of asking:
  // byte for byte what the CLI prints.
  ExitInfo cli = box.KeelDb({"breakers", "--json", "--summary"});
  REQUIRE(cli.exit_code == 0);
  CHECK(both.Dump() == Json::Parse(cli.out).Dump());
  Json summary = both["summary"];
  CHECK(summary["count"].Int() == 3);
  CHECK(summary["states"]["closed"].Int() == 2);
  CHECK(summary["states"]["forced_open"].Int() == 1);
  // api 1 ok, slowsvc 1 ok, late 2 failed.
  CHECK(summary["health_calls"].Int() == 4);
  CHECK(summary["health_percent"].Num() == 50);
  CHECK(Body(client->Get("/api/v1/breakers"), 200).Dump() == both["breakers"].Dump());

  Json b = both["breakers"];
  REQUIRE(b.Size() == 3);
  Json late = b[1];
  REQUIRE(late["key"].Str() == "late");
  CHECK(late["timeouts"].Int() == 2);
  CHECK(late["failed"].Int() == 2);
  CHECK(late["consecutive_failures"].Int() == 2);
  CHECK(late["last_failure_at"].IsString());
  Json slow = b[2];
  REQUIRE(slow["key"].Str() == "slowsvc");
  CHECK(slow["slow"].Int() == 1);
  CHECK(slow["slow_s"].Num() == doctest::Approx(0.05));
  CHECK(slow["slow_rate"].Num() == 1);
  CHECK(slow["window_calls"].Int() == 1);
  CHECK(slow["window_slow"].Int() == 1);
  CHECK(slow["consecutive_successes"].Int() == 1);
  CHECK(slow["last_success_at"].IsString());
  CHECK(slow["adaptive"].Bool() == false);
  CHECK(slow["effective"]["next_cooldown_s"].Num() == 30);

  auto metrics = client->Get("/metrics");
  REQUIRE(metrics);
  REQUIRE(metrics->status == 200);
  auto m = Samples(metrics->body);
  CHECK(m["keel_circuitbreaker_state{name=\"api\",state=\"forced_open\"}"] == 1);
  CHECK(m["keel_circuitbreaker_state{name=\"api\",state=\"closed\"}"] == 0);
  for (const char* state : {"open", "half_open", "recovering", "disabled"}) {
    CHECK(m.count("keel_circuitbreaker_state{name=\"api\",state=\"" + std::string(state) + "\"}"));
  }
  CHECK(m["keel_circuitbreaker_slow_calls_total{name=\"slowsvc\"}"] == 1);
  CHECK(m["keel_circuitbreaker_timeouts_total{name=\"late\"}"] == 2);
  CHECK(m["keel_circuitbreaker_timeouts_total{name=\"api\"}"] == 0);
}

}  // namespace keel::testing
