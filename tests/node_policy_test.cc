#include <doctest/doctest.h>

#include "engine/node_policy.h"

namespace keel {

TEST_CASE("defaults apply and node options win, field by field for retry") {
  auto p = ParseNodePolicy("n", R"({"retry":{"attempts":5},"timeout":2})",
                           R"({"timeout":30,"retry":{"attempts":3,"base":0.1,"jitter":"none"}})");
  REQUIRE(p.ok());
  CHECK(p->timeout == 2);
  CHECK(p->retry.attempts == 5);
  CHECK(p->retry.base == doctest::Approx(0.1));
  CHECK(p->retry.jitter == Jitter::kNone);
  CHECK_FALSE(p->has_circuit);
}

TEST_CASE("shorthands: retry = n, circuit = true or key, fallback string, join strings") {
  auto p = ParseNodePolicy("n", R"({"retry":4,"circuit":true,"fallback":"offline","join":"any"})",
                           "{}");
  REQUIRE(p.ok());
  CHECK(p->retry.attempts == 4);
  CHECK(p->has_circuit);
  CHECK(p->circuit.key == "n");
  REQUIRE(p->fallback.size() == 1);
  CHECK(p->fallback[0].workflow == "offline");
  CHECK(p->fallback[0].on.empty());
  CHECK(p->join.kind == JoinPolicy::Kind::kAny);
  auto q = ParseNodePolicy("n", R"({"circuit":"llm","fallback":["a","b"],"join":{"quorum":2}})",
                           "{}");
  REQUIRE(q.ok());
  CHECK(q->circuit.key == "llm");
  CHECK(q->fallback.size() == 2);
  CHECK(q->join.kind == JoinPolicy::Kind::kQuorum);
  CHECK(q->join.quorum == 2);
}

TEST_CASE("fallback entries may be picked by error kind") {
  auto p = ParseNodePolicy(
      "n", R"({"fallback":[{"on":["rate_limited","timeout"],"workflow":"cheap"},"offline"]})", "{}");
  REQUIRE(p.ok());
  REQUIRE(p->fallback.size() == 2);
  CHECK(p->fallback[0].workflow == "cheap");
  CHECK(p->fallback[0].Matches(ErrorKind::kRateLimited));
  CHECK(p->fallback[0].Matches(ErrorKind::kTimeout));
  CHECK_FALSE(p->fallback[0].Matches(ErrorKind::kPermanent));
  CHECK(p->fallback[1].Matches(ErrorKind::kPermanent));
  auto single = ParseNodePolicy("n", R"({"fallback":{"on":"transient","workflow":"w"}})", "{}");
  REQUIRE(single.ok());
  CHECK(single->fallback.size() == 1);
  auto bad_kind = ParseNodePolicy("n", R"({"fallback":[{"on":["rate_limit"],"workflow":"w"}]})", "{}");
  REQUIRE_FALSE(bad_kind.ok());
  CHECK(bad_kind.status().message().find("fallback.on: unknown error kind") != std::string::npos);
  auto no_workflow = ParseNodePolicy("n", R"({"fallback":[{"on":["timeout"]}]})", "{}");
  CHECK_FALSE(no_workflow.ok());
  auto stray = ParseNodePolicy("n", R"({"fallback":[{"workflow":"w","kinds":[]}]})", "{}");
  REQUIRE_FALSE(stray.ok());
  CHECK(stray.status().message().find("fallback.kinds: unknown option") != std::string::npos);
}

TEST_CASE("full circuit and retry tables parse") {
  auto p = ParseNodePolicy(
      "n",
      R"({"circuit":{"key":"k","failures":2,"failure_rate":0.5,"window":10,"cooldown":5,
          "factor":3,"max_cooldown":60,"probes":2,"successes":3},
          "retry":{"on":["timeout","transient"],"factor":3,"max":7,"jitter":"decorrelated"},
          "join":{"best_effort":1.5},"memory":"64MB","max_concurrency":3,"total_timeout":9})",
      "{}");
  REQUIRE(p.ok());
  CHECK(p->circuit.failures == 2);
  CHECK(p->circuit.probes == 2);
  CHECK(p->circuit.successes == 3);
  CHECK(p->retry.on.size() == 2);
  CHECK(p->retry.jitter == Jitter::kDecorrelated);
  CHECK(p->join.best_effort == doctest::Approx(1.5));
  CHECK(p->memory == 64u << 20);
  CHECK(p->max_concurrency == 3);
  CHECK(p->bulkhead_key == "k");  // the circuit key
  auto keyed = ParseNodePolicy("n", R"({"max_concurrency":{"limit":2,"key":"db"}})", "{}");
  REQUIRE(keyed.ok());
  CHECK(keyed->max_concurrency == 2);
  CHECK(keyed->bulkhead_key == "db");
  CHECK(p->total_timeout == 9);
}

TEST_CASE("bad options name themselves") {
  auto msg = [](const std::string& opts, const std::string& defaults = "{}") {
    auto p = ParseNodePolicy("n", opts, defaults);
    REQUIRE_FALSE(p.ok());
    return p.status().message();
  };
  CHECK(msg(R"({"retry":{"jitter":"lots"}})") ==
        "retry.jitter: expected one of none, full, equal, decorrelated");
  CHECK(msg(R"({"retry":{"on":["flaky"]}})").rfind("retry.on: unknown error kind", 0) == 0);
  CHECK(msg(R"({"timeout":-1})") == "timeout: expected a number of seconds > 0");
  CHECK(msg(R"({"join":"some"})").rfind("join: expected", 0) == 0);
  CHECK(msg(R"({"circuit":{"probs":2}})").rfind("circuit.probs: unknown option", 0) == 0);
  CHECK(msg(R"({"memory":"lots"})").rfind("memory: expected", 0) == 0);
  CHECK(msg("{}", R"({"retry":{"attempts":0}})") ==
        "defaults.retry.attempts: expected a whole number >= 1");
  CHECK(msg("{}", R"({"join":"any"})") == "defaults.join: unknown option");
}

TEST_CASE("circuit windows, slow calls, recovery and adaptive thresholds parse") {
  auto p = ParseNodePolicy(
      "n",
      R"({"circuit":{"key":"k","window":{"calls":20},"slow":{"seconds":2.5,"rate":0.4},
          "recovery":{"ramp":60,"start":0.2},"adaptive":{"margin":0.2,"half_life":500,
          "stable":120},"failure_rate":0.1}})",
      "{}");
  REQUIRE(p.ok());
  const BreakerConfig& c = p->circuit;
  CHECK(c.window_calls == 20);
  CHECK(c.window == 0);  // a count window alone has no time limit
  CHECK(c.slow_seconds == 2.5);
  CHECK(c.slow_rate == 0.4);
  CHECK(c.ramp == 60);
  CHECK(c.ramp_start == 0.2);
  CHECK(c.adaptive);
  CHECK(c.margin == 0.2);
  CHECK(c.half_life == 500);
  CHECK(c.stable == 120);
  auto both = ParseNodePolicy("n", R"({"circuit":{"window":{"seconds":30,"calls":10},
                                        "adaptive":true}})",
                              "{}");
  REQUIRE(both.ok());
  CHECK(both->circuit.window == 30);
  CHECK(both->circuit.window_calls == 10);
  CHECK(both->circuit.adaptive);
  CHECK(both->circuit.margin == doctest::Approx(0.3));
  auto plain = ParseNodePolicy("n", R"({"circuit":{"window":45}})", "{}");
  REQUIRE(plain.ok());
  CHECK(plain->circuit.window == 45);
  CHECK(plain->circuit.window_calls == 0);
}

TEST_CASE("bad circuit options name themselves") {
  auto msg = [](const std::string& circuit) {
    auto p = ParseNodePolicy("n", R"({"circuit":)" + circuit + "}", "{}");
    REQUIRE_FALSE(p.ok());
    return p.status().message();
  };
  CHECK(msg(R"({"window":{"calls":0}})") == "circuit.window.calls: expected a whole number >= 1");
  CHECK(msg(R"({"window":{}})") ==
        "circuit.window: expected seconds, { seconds = S } or { calls = N }");
  CHECK(msg(R"({"window":{"count":5}})").rfind("circuit.window.count: unknown option", 0) == 0);
  CHECK(msg(R"({"slow":{"seconds":2}})") ==
        "circuit.slow: expected { seconds = S, rate = R }: both are needed");
  CHECK(msg(R"({"slow":{"seconds":2,"rate":1.5}})") == "circuit.slow.rate: expected a number in (0, 1]");
  CHECK(msg(R"({"slow":3})") == "circuit.slow: expected a table");
  CHECK(msg(R"({"recovery":{"start":0.5}})") == "circuit.recovery: expected { ramp = seconds }");
  CHECK(msg(R"({"recovery":{"ramp":-1}})") ==
        "circuit.recovery.ramp: expected a number of seconds > 0");
  CHECK(msg(R"({"adaptive":"yes"})") ==
        "circuit.adaptive: expected true, false or { margin, half_life, stable }");
  CHECK(msg(R"({"window":"1m"})") == "circuit.window: expected seconds or { seconds = S, calls = N }");
  CHECK(msg(R"({"adaptive":{"margin":0}})") == "circuit.adaptive.margin: expected a number in (0, 1]");
  CHECK(msg(R"({"adaptive":{"half_life":0.5}})") ==
        "circuit.adaptive.half_life: expected a number of calls >= 1");
}

TEST_CASE("retry budget") {
  CHECK(*ParseRetryBudget("{}") == -1);
  CHECK(*ParseRetryBudget(R"({"retry_budget":10})") == 10);
  CHECK_FALSE(ParseRetryBudget(R"({"retry_budget":-2})").ok());
}

}  // namespace keel
