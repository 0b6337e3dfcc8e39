// /metrics (service/metrics.h) over real HTTP on loopback, on a database
// that `keel run` processes populated with runs that succeed, fail, retry,
// time out, fall back and open a breaker: the counts match what `keel show`
// recorded, a restart gives the same numbers, new events are counted
// incrementally, events are counted by kind and severity as `keel show`
// gives them, and `promtool check metrics` accepts the text when promtool is
// installed.

#include <doctest/doctest.h>
#include <httplib.h>
#include <unistd.h>

#include <cstdio>
#include <map>
#include <sstream>
#include <thread>

#include "engine/clock.h"
#include "store/sqlite/sqlite_store.h"
#include "service/metrics.h"
#include "tests/support/json.h"
#include "tests/support/sandbox.h"
#include "tests/support/subprocess.h"

namespace keel::testing {
namespace {

using service::Metrics;

struct Server {
  explicit Server(const std::string& db) {
    auto opened = SqliteStore::Open(db, SqliteStoreOptions{});
    REQUIRE_MESSAGE(opened.ok(), opened.status().ToString());
    store = std::move(opened).value();
    metrics = std::make_unique<Metrics>(store.get(), SystemClock(), /*batch=*/7);
    metrics->Register(http);
    port = http.bind_to_any_port("127.0.0.1");
    REQUIRE(port > 0);
    thread = std::thread([this] { http.listen_after_bind(); });
  }
  ~Server() {
    http.stop();
    thread.join();
  }
  std::string Scrape() {
    httplib::Client client("127.0.0.1", port);
    auto response = client.Get("/metrics");
    REQUIRE(response);
    REQUIRE(response->status == 200);
    CHECK(response->get_header_value("Content-Type").find("version=0.0.4") != std::string::npos);
    return response->body;
  }

  std::unique_ptr<SqliteStore> store;
  std::unique_ptr<Metrics> metrics;
  httplib::Server http;
  int port = 0;
  std::thread thread;
};

// "name{labels}" -> value, for every sample line.
std::map<std::string, double> Samples(const std::string& text) {
  std::map<std::string, double> samples;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    size_t space = line.rfind(' ');
    samples[line.substr(0, space)] = std::stod(line.substr(space + 1));
  }
  return samples;
}

constexpr char kWorkflows[][2][1200] = {
    {"ok.lua", R"lua(local keel = require "keel"
return keel.workflow "ok" {
  keel.fn "a" { run = function() return 1 end },
  keel.fn "b" { after = { "a" }, run = function() return 2 end },
}
)lua"},
    {"fail.lua", R"lua(local keel = require "keel"
return keel.workflow "fail" {
  keel.fn "broken" { run = function() keel.fail { kind = "permanent", message = "no" } end },
}
)lua"},
    {"flaky.lua", R"lua(local keel = require "keel"
return keel.workflow "flaky" {
  keel.fn "fetch" {
    retry = { attempts = 4, base = 0.01, jitter = "none" },
    run = function(ctx)
      if ctx.attempt <= 2 then keel.fail { kind = "transient", message = "reset" } end
      return ctx.attempt
    end,
  },
}
)lua"},
    {"slow.lua", R"lua(local keel = require "keel"
return keel.workflow "slow" {
  keel.fn "nap" { optional = true, timeout = 0.2, run = function() keel.sleep(30) end },
  keel.fn "after" { after = { "nap" }, run = function() return 1 end },
}
)lua"},
    {"breaker.lua", R"lua(local keel = require "keel"
keel.workflow "cached" { keel.fn "lookup" { run = function() return 1 end } }
local nodes = {}
for i = 1, 4 do
  nodes[#nodes + 1] = keel.fn("price" .. i) {
    circuit = { key = "pricing", failures = 2, cooldown = 60 },
    max_concurrency = 1,
    fallback = "cached",
    run = function() keel.fail { kind = "transient", message = "refused" } end,
  }
end
return keel.workflow "checkout" (nodes)
)lua"},
};

// Counts over every run's `keel show --events --json`: kinds, with the
// events of fallback workflows unwrapped.
std::map<std::string, int> CountShown(const Sandbox& box, const Json& runs) {
  std::map<std::string, int> counts;
  for (size_t r = 0; r < runs.Size(); ++r) {
    Json events = box.Show(runs[r]["run_id"].Str(), true)["events"];
    for (size_t i = 0; i < events.Size(); ++i) {
      std::string kind = events[i]["kind"].Str();
      Json data = events[i]["data"];
      if (kind == "fallback_event") {
        kind = data["event"].Str();
        data = data["data"];
      }
      ++counts[kind];
      if (kind == "attempt_failed") ++counts["attempt_failed:" + data["kind"].Str()];
      if (kind == "fallback_finished") ++counts["fallback_finished:" + data["status"].Str()];
    }
  }
  return counts;
}

// Events of every run's `keel show --events --json` by the sample of
// keel_events_by_severity_total they count in: `{kind="K",severity="S"}`.
std::map<std::string, int> CountSeverities(const Sandbox& box, const Json& runs) {
  std::map<std::string, int> counts;
  for (size_t r = 0; r < runs.Size(); ++r) {
    Json events = box.Show(runs[r]["run_id"].Str(), true)["events"];
    for (size_t i = 0; i < events.Size(); ++i) {
      ++counts["{kind=\"" + events[i]["kind"].Str() + "\",severity=\"" +
               events[i]["severity"].Str() + "\"}"];
    }
  }
  return counts;
}

TEST_CASE("metrics count what every process recorded, and survive a restart" *
          doctest::timeout(180)) {
  Sandbox box(KEEL_BIN);
  for (const auto& wf : kWorkflows) {
    std::string path = box.Write(wf[0], wf[1]);
    ExitInfo r = box.KeelDb({"run", path}, std::chrono::seconds(60));
    INFO(r.Describe());
    REQUIRE_FALSE(r.timed_out);
  }
  Json runs = box.Runs();
  REQUIRE(runs.Size() == std::size(kWorkflows));
  std::map<std::string, int> statuses;
  for (size_t i = 0; i < runs.Size(); ++i) ++statuses[runs[i]["status"].Str()];
  std::map<std::string, int> shown = CountShown(box, runs);
  REQUIRE(shown["breaker_opened"] >= 1);
  REQUIRE(shown["retry_scheduled"] >= 2);
  REQUIRE(shown["attempt_failed:timeout"] >= 1);
  REQUIRE(shown["fallback_finished"] >= 1);

  std::string first;
  {
    Server server(box.db());
    first = server.Scrape();
    auto m = Samples(first);
    CHECK(m["keel_runs_started_total"] == runs.Size());
    for (const char* status : {"succeeded", "failed", "degraded", "cancelled"}) {
      CAPTURE(status);
      CHECK(m[std::string("keel_runs_finished_total{status=\"") + status + "\"}"] ==
            statuses[status]);
    }
    CHECK(m["keel_runs_active"] == 0);
    CHECK(m["keel_node_attempts_total{outcome=\"succeeded\"}"] == shown["node_succeeded"]);
    CHECK(m["keel_node_attempts_total{outcome=\"timeout\"}"] == shown["attempt_failed:timeout"]);
    CHECK(m["keel_node_attempts_total{outcome=\"failed\"}"] ==
          shown["attempt_failed"] - shown["attempt_failed:timeout"] -
              shown["attempt_failed:cancelled"]);
    CHECK(m["keel_node_attempts_total{outcome=\"rejected\"}"] == shown["circuit_rejected"]);
    CHECK(m["keel_retries_total"] == shown["retry_scheduled"]);
    CHECK(m["keel_timeouts_total{scope=\"attempt\"}"] == shown["attempt_failed:timeout"]);
    CHECK(m["keel_fallbacks_total{status=\"succeeded\"}"] ==
          shown["fallback_finished:succeeded"]);
    CHECK(m["keel_circuitbreaker_transitions_total{name=\"pricing\",state=\"open\"}"] ==
          shown["breaker_opened"] + shown["breaker_reopened"]);
    CHECK(m["keel_circuitbreaker_state{name=\"pricing\",state=\"open\"}"] == 1);
    CHECK(m["keel_circuitbreaker_state{name=\"pricing\",state=\"closed\"}"] == 0);
    const int finished_nodes = shown["node_succeeded"] + shown["node_failed"] +
                               shown["node_fallback"] + shown["node_cancelled"] +
                               shown["node_skipped"];
    double duration_count = 0;
    for (const auto& [key, value] : m) {
      if (key.rfind("keel_node_duration_seconds_count", 0) == 0) duration_count += value;
    }
    CHECK(duration_count == finished_nodes);
    int total = 0;
    for (const auto& [kind, n] : shown) total += kind.find(':') == std::string::npos ? n : 0;
    CHECK(m["keel_events_total"] >= total - shown["node_started"]);  // sanity: all were read

    // Every event by kind and severity, as `keel show` gives them: the
    // optional node's failure a warning, the required one's an error.
    std::map<std::string, int> severities = CountSeverities(box, runs);
    CHECK(severities["{kind=\"node_failed\",severity=\"warning\"}"] >= 1);
    CHECK(severities["{kind=\"node_failed\",severity=\"error\"}"] >= 1);
    CHECK(severities["{kind=\"breaker_opened\",severity=\"warning\"}"] >= 1);
    double by_severity = 0;
    for (const auto& [series, value] : m) {
      const std::string key = series;  // a copy: doctest's CAPTURE takes no structured binding
      if (key.rfind("keel_events_by_severity_total{", 0) != 0) continue;
      CAPTURE(key);
      CHECK(value == severities[key.substr(std::string("keel_events_by_severity_total").size())]);
      by_severity += value;
    }
    CHECK(by_severity == m["keel_events_total"]);

    // Scraping again reads nothing new and says the same.
    CHECK(server.Scrape() == first);

    // A run written after the first scrape is counted by the next one.
    ExitInfo r = box.KeelDb({"run", box.Path("ok.lua")});
    REQUIRE(r.exit_code == 0);
    auto later = Samples(server.Scrape());
    CHECK(later["keel_runs_started_total"] == runs.Size() + 1);
    CHECK(later["keel_runs_finished_total{status=\"succeeded\"}"] == statuses["succeeded"] + 1);
    CHECK(later["keel_node_attempts_total{outcome=\"succeeded\"}"] ==
          shown["node_succeeded"] + 2);
    first = server.Scrape();
  }
  {
    // A restart: the history is read again, and the numbers are the same.
    Server server(box.db());
    CHECK(server.Scrape() == first);
  }

  std::string promtool = "/usr/bin/promtool";
  if (access(promtool.c_str(), X_OK) != 0) {
    MESSAGE("promtool is not installed (Debian package prometheus): skipping promtool check");
    return;
  }
  std::string file = box.Write("metrics.txt", first);
  // promtool reads the metrics on its standard input.
  SpawnOptions options;
  options.args = {"-c", "exec \"$0\" check metrics < \"$1\"", promtool, file};
  ExitInfo check = RunProcess("/bin/sh", options, std::chrono::seconds(30));
  INFO(check.Describe());
  CHECK(check.exit_code == 0);
}

}  // namespace
}  // namespace keel::testing
