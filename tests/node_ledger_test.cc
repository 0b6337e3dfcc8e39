// The live state of a run and a node's attempt ledger and "why", from
// recorded event sequences with made-up times (views/live_state.h,
// views/node_ledger.h): no store, no clock, no sleeps.

#include <doctest/doctest.h>

#include "engine/wait_node.h"
#include "views/live_state.h"
#include "views/node_ledger.h"

namespace keel {
namespace {

// 2026-12-05 12:00:00 UTC.
constexpr double kT0 = 1796472000;

EventRecord Ev(double ts, const std::string& node, const std::string& kind,
               const std::string& data = "{}") {
  static int64_t seq = 0;
  return EventRecord{"r", ++seq, kT0 + ts, node, kind, data};
}

NodeRecord Record(const std::string& name, NodeStatus status) {
  NodeRecord r;
  r.run_id = "r";
  r.node = name;
  r.status = status;
  return r;
}

// A node whose first attempt timed out and whose retry waits 2 s.
std::vector<EventRecord> BackingOff() {
  return {Ev(0, "a", "node_started", R"({"attempt":1})"),
          Ev(1, "a", "attempt_failed", R"({"attempt":1,"kind":"timeout","message":"too slow"})"),
          Ev(1, "a", "retry_scheduled", R"({"attempt":2,"delay":2.0,"after":"timeout"})")};
}

TEST_CASE("a node's live state follows its last attempt events") {
  CHECK(NodeLiveState(BackingOff(), kT0 + 2).state == "backing_off");
  CHECK(NodeLiveState(BackingOff(), kT0 + 2).until == doctest::Approx(kT0 + 3));
  // The delay has passed: the next attempt is due.
  CHECK(NodeLiveState(BackingOff(), kT0 + 4).state == "retrying");
  auto retried = BackingOff();
  retried.push_back(Ev(3, "a", "attempt_started", R"({"attempt":2})"));
  retried.push_back(Ev(3.5, "a", "llm_call", R"({"model":"m"})"));
  CHECK(NodeLiveState(retried, kT0 + 4).state == "retrying");
  std::vector<EventRecord> rejected = {
      Ev(0, "b", "node_started", R"({"attempt":1})"),
      Ev(0, "b", "circuit_rejected", R"({"key":"llm:fast","retry_in":5})"),
      Ev(0, "b", "retry_scheduled", R"({"attempt":1,"delay":5,"after":"circuit_open"})")};
  CHECK(NodeLiveState(rejected, kT0 + 1).state == "breaker_open");
  CHECK(NodeLiveState({Ev(0, "c", "node_started", R"({"attempt":1})")}, kT0).state == "running");
}

TEST_CASE("a run's live state: the most telling node wins; the label decides the rest") {
  std::vector<std::pair<NodeRecord, std::vector<EventRecord>>> running = {
      {Record("plain", NodeStatus::kRunning), {Ev(0, "plain", "node_started")}},
      {Record("a", NodeStatus::kRunning), BackingOff()}};
  LiveState live = DeriveLiveState("running", {}, running, kT0 + 2);
  CHECK(live.state == "backing_off");
  CHECK(live.node == "a");
  CHECK(DeriveLiveState("running", {}, {running[0]}, kT0).state == "running");
  CHECK(DeriveLiveState("queued", {}, {}, kT0).state == "queued");
  CHECK(DeriveLiveState("interrupted", {}, {}, kT0).state == "interrupted");
  CHECK(DeriveLiveState("succeeded", {}, {}, kT0).state.empty());

  NodeRecord wait = Record("approve", NodeStatus::kWaiting);
  wait.output_json = WaitInfoJson({"approval", 0});
  live = DeriveLiveState("waiting", {wait}, {}, kT0);
  CHECK(live.state == "waiting_signal");
  CHECK(live.waiting_for == "approval");
  NodeRecord timer = Record("later", NodeStatus::kWaiting);
  timer.output_json = WaitInfoJson({"", kT0 + 60});
  live = DeriveLiveState("waiting", {timer}, {}, kT0);
  CHECK(live.state == "waiting_timer");
  CHECK(live.until == kT0 + 60);
}

TEST_CASE("state names are checked") {
  for (const char* name : {"queued", "running", "retrying", "backing_off", "breaker_open",
                           "waiting_signal", "waiting_timer", "interrupted"}) {
    CHECK(IsLiveStateName(name));
  }
  CHECK_FALSE(IsLiveStateName("succeeded"));
  CHECK_FALSE(IsLiveStateName(""));
}

TEST_CASE("the ledger says which policy decided each attempt and what came next") {
  auto events = BackingOff();
  events.push_back(Ev(3, "a", "attempt_started", R"({"attempt":2})"));
  events.push_back(Ev(4, "a", "attempt_failed",
                      R"({"attempt":2,"kind":"transient","message":"503"})"));
  events.push_back(Ev(4, "a", "retry_budget_exhausted"));
  events.push_back(Ev(4, "a", "fallback_started", R"({"workflow":"cheap","after":"transient"})"));
  events.push_back(Ev(6, "a", "fallback_finished", R"({"workflow":"cheap","status":"succeeded"})"));
  events.push_back(Ev(6, "a", "node_fallback", R"({"seconds":6,"attempts":2})"));
  auto ledger = BuildLedger(events, nullptr, kT0 + 10);
  REQUIRE(ledger.size() == 2);
  CHECK(ledger[0].attempt == 1);
  CHECK(ledger[0].outcome == "timeout");
  CHECK(ledger[0].message == "too slow");
  CHECK(ledger[0].decided_by == "retry");
  CHECK(ledger[0].next == "retried after 2s");
  CHECK(ledger[0].finished_at - ledger[0].started_at == doctest::Approx(1));
  CHECK(ledger[1].attempt == 2);
  CHECK(ledger[1].outcome == "failed");
  CHECK(ledger[1].error_kind == "transient");
  CHECK(ledger[1].decided_by == "fallback");
  CHECK(ledger[1].next == "fallback workflow cheap ran: succeeded");
}

TEST_CASE("a rejected try, then an admitted attempt that succeeds") {
  std::vector<EventRecord> events = {
      Ev(0, "b", "node_started", R"({"attempt":1})"),
      Ev(0, "b", "circuit_rejected", R"({"key":"llm:fast","retry_in":5})"),
      Ev(0, "b", "retry_scheduled", R"({"attempt":1,"delay":5,"after":"circuit_open"})"),
      Ev(6, "b", "node_succeeded", R"({"seconds":6,"attempts":1})")};
  auto ledger = BuildLedger(events, nullptr, kT0 + 10);
  REQUIRE(ledger.size() == 1);
  CHECK(ledger[0].outcome == "rejected");
  CHECK(ledger[0].decided_by == "breaker");
  CHECK(ledger[0].message == "breaker llm:fast open: rejected");
  // The admitted attempt recorded no start of its own; it closes with the node.
  CHECK(BuildLedger(events, nullptr, kT0 + 10)[0].next == "retried after 5s");
  std::vector<EventRecord> admitted = {
      Ev(0, "b", "node_started", R"({"attempt":1})"),
      Ev(0, "b", "circuit_rejected", R"({"key":"k","retry_in":5})"),
      Ev(0, "b", "retry_scheduled", R"({"attempt":1,"delay":5,"after":"circuit_open"})"),
      Ev(7, "b", "attempt_failed", R"({"attempt":1,"kind":"transient","message":"x"})")};
  ledger = BuildLedger(admitted, nullptr, kT0 + 10);
  REQUIRE(ledger.size() == 2);
  CHECK(ledger[1].outcome == "failed");
  CHECK(ledger[1].started_at == doctest::Approx(kT0 + 5));
}

TEST_CASE("why: waiting, backing off, breaker open, skipped, cancelled") {
  CHECK(ExplainNode("pending", nullptr, {}, {"extract", "clean"}, "running", kT0) ==
        "waiting on extract, clean");
  CHECK(ExplainNode("running", nullptr, BackingOff(), {}, "running", kT0 + 2) ==
        "backing off until 12:00:03 UTC (attempt 1 failed: timeout)");
  std::vector<EventRecord> rejected = {
      Ev(0, "b", "circuit_rejected", R"({"key":"llm:fast","retry_in":4})")};
  CHECK(ExplainNode("running", nullptr, rejected, {}, "running", kT0 + 1) ==
        "breaker llm:fast open until 12:00:04 UTC");
  NodeRecord wait = Record("approve", NodeStatus::kWaiting);
  wait.output_json = WaitInfoJson({"approve", 0});
  CHECK(ExplainNode("waiting", &wait, {}, {}, "waiting", kT0) == "waiting for signal approve");
  NodeRecord skipped = Record("s", NodeStatus::kSkipped);
  skipped.error_message = "when() said no";
  CHECK(ExplainNode("skipped", &skipped, {}, {}, "succeeded", kT0) == "skipped: when() said no");
  NodeRecord cancelled = Record("c", NodeStatus::kCancelled);
  cancelled.error_message = "dependency 'y' failed";
  CHECK(ExplainNode("cancelled", &cancelled, {}, {}, "failed", kT0) ==
        "cancelled because dependency 'y' failed");
  CHECK(ExplainNode("succeeded", nullptr, {}, {}, "succeeded", kT0).empty());
  CHECK(ExplainNode("pending", nullptr, {}, {}, "failed", kT0) == "not reached: the run is failed");
}

}  // namespace
}  // namespace keel
