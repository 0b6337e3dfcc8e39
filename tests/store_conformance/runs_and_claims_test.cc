// Runs and claims: CreateRun is durable and refuses a taken id, GetRun takes
// a unique prefix, ClaimRun bumps the epoch and takes a run only from a dead
// owner at the epoch the caller read, ClaimRunForRerun and CreateForkedRun.

#include <atomic>
#include <thread>

#include "engine/rerun.h"
#include "engine/run_history.h"
#include "tests/store_conformance/conformance.h"

namespace keel::conformance {
namespace {

KEEL_CONFORMANCE_SUITE;

TEST_CASE("CreateRun is durable on return and refuses an existing id" * doctest::timeout(60)) {
  KEEL_FRESH_BACKEND(db);
  auto store = db->Open();
  RunRecord run = MakeRun("r1", 100);
  run.params_json = R"({"topic":"x"})";
  run.config_json = R"({"max_inflight":2})";
  REQUIRE_OK(store->CreateRun(run));
  // Another process sees it at once, without any Flush.
  auto other = db->OpenSecond();
  RunRecord got = RunOf(*other, "r1");
  CHECK(got.workflow == "wf");
  CHECK(got.status == RunStatus::kRunning);
  CHECK(got.epoch == 1);
  CHECK(got.script_version == 1);
  CHECK(got.params_json == R"({"topic":"x"})");
  CHECK(got.config_json == R"({"max_inflight":2})");
  CHECK(got.owner.pid == 1);
  CHECK(got.owner.host == "elsewhere");
  CHECK(got.owner.start_ticks == 1);
  CHECK(got.created_at == 100);
  CHECK(got.heartbeat == 100);
  CHECK(got.finished_at == 0);
  CHECK(got.node_count == 2);
  CHECK(got.idle_s == 0);
  CHECK(got.forked_from.empty());
  CHECK(got.modules.empty());  // GetRun leaves them to GetScriptVersions

  Status again = other->CreateRun(MakeRun("r1", 200));
  CHECK(again.kind() == ErrorKind::kPermanent);
  CHECK(Contains(again.message(), "already exists"));
  CHECK(RunOf(*store, "r1").created_at == 100);  // the first one is untouched
}

TEST_CASE("GetRun takes a unique prefix and names the runs an ambiguous one matches" *
          doctest::timeout(60)) {
  KEEL_FRESH_BACKEND(db);
  auto store = db->Open();
  for (const char* id : {"abc-1", "abc-2", "abd", "r1", "r10", "a_c", "x%y"}) Create(*store, id);
  CHECK(RunOf(*store, "abd").id == "abd");
  CHECK(RunOf(*store, "abc-2").id == "abc-2");
  CHECK(RunOf(*store, "r1").id == "r1");  // exact wins over being a prefix of r10
  CHECK(RunOf(*store, "r10").id == "r10");
  // Pattern characters are plain characters in a prefix.
  CHECK(RunOf(*store, "a_").id == "a_c");
  CHECK(RunOf(*store, "x%").id == "x%y");
  CHECK_FALSE(store->GetRun("x_").ok());

  auto ambiguous = store->GetRun("abc");
  REQUIRE_FALSE(ambiguous.ok());
  CHECK(ambiguous.status().kind() == ErrorKind::kPermanent);
  CHECK(ambiguous.status().message() == "run id 'abc' is ambiguous: it matches abc-1, abc-2");
  auto missing = store->GetRun("zz");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().kind() == ErrorKind::kPermanent);
  CHECK(missing.status().message().find("no run 'zz'") == 0);
  CHECK_FALSE(store->GetRun("abc-3").ok());
  CHECK_FALSE(store->GetRun("").ok());
}

TEST_CASE("ClaimRun refuses a live owner, naming it, and takes over from a dead one" *
          doctest::timeout(60)) {
  KEEL_FRESH_BACKEND(db);
  auto store = db->Open();
  RunRecord run = MakeRun("r1", 100);
  run.owner = {4242, "host-a", 77};
  REQUIRE_OK(store->CreateRun(run));
  store->SaveNode(MakeNode("r1", "a"));
  store->Heartbeat("r1", 110);
  store->FinishRun("r1", RunStatus::kFailed, "crashed", 150);
  Flushed(*store);

  auto other = db->OpenSecond();
  RunRecord claim = run;
  claim.owner = {99, "host-b", 5};
  claim.heartbeat = claim.updated_at = 130;
  claim.script_text = "fixed";
  claim.script_sha256 = "11";
  claim.node_count = 5;
  claim.config_json = R"({"k":1})";
  Owner seen;
  double seen_age = -1;
  auto alive = [&](const Owner& owner, double age) {
    seen = owner;
    seen_age = age;
    return true;
  };
  Status refused = other->ClaimRun(claim, 1, alive).status();
  CHECK(refused.kind() == ErrorKind::kPermanent);
  CHECK(Contains(refused.message(), "4242@host-a"));
  CHECK(seen.pid == 4242);
  CHECK(seen.start_ticks == 77);
  CHECK(seen_age == doctest::Approx(20));  // claim time less the last heartbeat
  CHECK(RunOf(*store, "r1").epoch == 1);           // nothing written

  claim.heartbeat = claim.updated_at = 200;
  auto claimed = other->ClaimRun(claim, 1, kDead);
  REQUIRE_MESSAGE(claimed.ok(), claimed.status().ToString());
  CHECK(claimed->epoch == 2);
  CHECK(claimed->before.status == RunStatus::kFailed);
  CHECK(claimed->before.error == "crashed");
  CHECK(claimed->before.epoch == 1);
  REQUIRE(claimed->nodes.size() == 1);
  CHECK(claimed->nodes[0].node == "a");
  CHECK(claimed->nodes[0].output_json == MakeNode("r1", "a").output_json);
  RunRecord got = RunOf(*store, "r1");
  CHECK(got.owner.pid == 99);
  CHECK(got.owner.host == "host-b");
  CHECK(got.owner.start_ticks == 5);
  CHECK(got.status == RunStatus::kRunning);
  CHECK(got.script_text == "fixed");
  CHECK(got.script_sha256 == "11");
  CHECK(got.node_count == 5);
  CHECK(got.config_json == R"({"k":1})");
  CHECK(got.heartbeat == 200);
  CHECK(got.updated_at == 200);
  CHECK(got.finished_at == 0);
  CHECK(got.error.empty());
  CHECK(got.created_at == 100);
  CHECK(got.epoch == 2);

  auto none = other->ClaimRun(MakeRun("nope"), 1, kDead);
  CHECK(none.status().kind() == ErrorKind::kPermanent);
}

TEST_CASE("ClaimRun counts the seconds no process ran the run as idle" * doctest::timeout(60)) {
  KEEL_FRESH_BACKEND(db);
  auto store = db->Open();
  RunRecord run = MakeRun("r1", 100);
  REQUIRE_OK(store->CreateRun(run));
  store->Heartbeat("r1", 110);
  store->FinishRun("r1", RunStatus::kInterrupted, "stopped", 120);  // the last sign of life
  Flushed(*store);
  RunRecord claim = run;
  claim.heartbeat = claim.updated_at = 150;
  auto first = store->ClaimRun(claim, 1, kDead);
  REQUIRE_MESSAGE(first.ok(), first.status().ToString());
  CHECK(RunOf(*store, "r1").idle_s == doctest::Approx(30));
  // The second process ran it until 160 (its heartbeat), and a third takes
  // it at 200: 40 more idle seconds.
  store->Heartbeat("r1", 160);
  Flushed(*store);
  auto other = db->OpenSecond();
  claim.heartbeat = claim.updated_at = 200;
  REQUIRE_OK(other->ClaimRun(claim, first->epoch, kDead));
  CHECK(RunOf(*other, "r1").idle_s == doctest::Approx(70));
}

TEST_CASE("ClaimRun refuses a stale epoch, a succeeded and a cancelled run, writing nothing" *
          doctest::timeout(60)) {
  KEEL_FRESH_BACKEND(db);
  auto first = db->Open();
  auto second = db->OpenSecond();
  RunRecord run = MakeRun("r1", 100);
  REQUIRE_OK(first->CreateRun(run));

  auto taken = second->ClaimRun(run, 1, kDead);
  REQUIRE_OK(taken);
  CHECK(taken->epoch == 2);
  // A claim decided on the old epoch loses: another process claimed meanwhile.
  auto late = first->ClaimRun(run, 1, kDead);
  REQUIRE_FALSE(late.ok());
  CHECK(late.status().kind() == ErrorKind::kPermanent);
  CHECK(Contains(late.status().message(), "another process"));
  CHECK(RunOf(*first, "r1").epoch == 2);

  second->FinishRun("r1", RunStatus::kSucceeded, "", 200);
  Flushed(*second);
  auto done = first->ClaimRun(run, 2, kDead);
  REQUIRE_FALSE(done.ok());
  CHECK(done.status().kind() == ErrorKind::kPermanent);
  CHECK(Contains(done.status().message(), "already succeeded"));
  CHECK(RunOf(*first, "r1").status == RunStatus::kSucceeded);

  // Recorded cancelled by its owner (CancelRun's own refusals are in
  // signals_and_cancel_test.cc).
  Create(*first, "c1");
  first->FinishRun("c1", RunStatus::kCancelled, "cancelled", 5);
  Flushed(*first);
  RunRecord cancelled = RunOf(*first, "c1");
  auto refused = second->ClaimRun(cancelled, cancelled.epoch, kDead);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().kind() == ErrorKind::kPermanent);
  CHECK(Contains(refused.status().message(), "cancel"));
  CHECK(RunOf(*first, "c1").status == RunStatus::kCancelled);
}

TEST_CASE("two stores claiming one run at the same epoch: exactly one wins" *
          doctest::timeout(120)) {
  KEEL_FRESH_BACKEND(db);
  auto a = db->Open();
  auto b = db->OpenSecond();
  constexpr int kRuns = 20;
  for (int i = 0; i < kRuns; ++i) Create(*a, "r" + std::to_string(i));
  std::atomic<int> won{0}, errors{0};
  auto race = [&](Store* store, int64_t pid) {
    for (int i = 0; i < kRuns; ++i) {
      RunRecord claim = MakeRun("r" + std::to_string(i), 1);
      claim.owner = {pid, "racer", pid};
      claim.updated_at = claim.heartbeat = 10;
      auto claimed = store->ClaimRun(claim, 1, kDead);
      if (claimed.ok()) {
        ++won;
        if (claimed->epoch != 2) ++errors;
      } else if (claimed.status().kind() != ErrorKind::kPermanent) {
        ++errors;
      }
    }
  };
  std::thread ta(race, a.get(), 1);
  std::thread tb(race, b.get(), 2);
  ta.join();
  tb.join();
  CHECK(won == kRuns);
  CHECK(errors == 0);
  for (int i = 0; i < kRuns; ++i) CHECK(RunOf(*a, "r" + std::to_string(i)).epoch == 2);
}

TEST_CASE("ClaimRunForRerun takes a succeeded run and resets exactly the nodes named" *
          doctest::timeout(60)) {
  KEEL_FRESH_BACKEND(db);
  auto store = db->Open();
  RunRecord run = MakeRun("r1");
  REQUIRE_OK(store->CreateRun(run));
  for (const char* name : {"a", "b", "b[1]", "b/x", "b#2/y", "bb", "c"}) {
    NodeRecord node = MakeNode("r1", name);
    node.attempts = 2;
    store->SaveNode(node);
  }
  store->AppendEvent({"r1", 0, 1, "b", "checkpoint", R"({"step":1})"});
  store->FinishRun("r1", RunStatus::kSucceeded, "", 2);
  Flushed(*store);

  auto other = db->OpenSecond();
  auto plain = other->ClaimRun(run, 1, kDead);
  REQUIRE_FALSE(plain.ok());
  CHECK(Contains(plain.status().message(), "already succeeded"));
  CHECK_FALSE(other->ClaimRunForRerun(run, 1, "b", {"b", "c"}, kAlive).ok());
  CHECK_FALSE(other->ClaimRunForRerun(run, 7, "b", {"b", "c"}, kDead).ok());
  CHECK(FindNode(Must(other->GetNodes("r1")), "b")->status == NodeStatus::kSucceeded);
  CHECK(Must(other->GetNodes("r1")).size() == 7);  // nothing written by the refusals

  auto claimed = other->ClaimRunForRerun(run, 1, "b", {"b", "c"}, kDead);
  REQUIRE_MESSAGE(claimed.ok(), claimed.status().ToString());
  CHECK(claimed->epoch == 2);
  CHECK(claimed->before.status == RunStatus::kSucceeded);
  CHECK(Names(claimed->nodes) == std::vector<std::string>{"a", "b", "bb", "c"});
  const NodeRecord* b = FindNode(claimed->nodes, "b");
  REQUIRE(b != nullptr);
  CHECK(b->status == NodeStatus::kPending);
  CHECK(b->attempts == 2);
  CHECK_FALSE(b->output_json.has_value());
  CHECK(FindNode(claimed->nodes, "c")->status == NodeStatus::kPending);
  CHECK(FindNode(claimed->nodes, "a")->status == NodeStatus::kSucceeded);
  CHECK(FindNode(claimed->nodes, "bb")->status == NodeStatus::kSucceeded);
  CHECK(Names(Must(store->GetNodes("r1"))) == Names(claimed->nodes));
  RunRecord again = RunOf(*store, "r1");
  CHECK(again.status == RunStatus::kRunning);
  CHECK(again.finished_at == 0);
  CHECK(again.epoch == 2);

  auto events = Must(store->GetEvents("r1"));
  REQUIRE_FALSE(events.empty());
  CHECK(events.back().kind == kRerunEventKind);
  CHECK(events.back().seq == 2);
  CHECK(ReadRunHistory(events).journals.count("b") == 0);
}

TEST_CASE("CreateForkedRun creates the run with its copied records in one step" *
          doctest::timeout(60)) {
  KEEL_FRESH_BACKEND(db);
  auto store = db->Open();
  RunRecord fork = MakeRun("f1");
  fork.forked_from = "r0";
  fork.forked_from_node = "b";
  NodeRecord kept = MakeNode("r0", "a");
  kept.script_version = 3;  // a fork's copies carry version 0 whatever they had
  REQUIRE_OK(store->CreateForkedRun(fork, {kept, MakeNode("r0", "m[1]")}));
  auto other = db->OpenSecond();
  RunRecord run = RunOf(*other, "f1");
  CHECK(run.forked_from == "r0");
  CHECK(run.forked_from_node == "b");
  CHECK(run.epoch == 1);
  auto nodes = Must(other->GetNodes("f1"));
  CHECK(Names(nodes) == std::vector<std::string>{"a", "m[1]"});
  CHECK(nodes.at(0).run_id == "f1");
  CHECK(nodes.at(0).script_version == 0);
  CHECK(nodes.at(0).output_json == kept.output_json);
  CHECK(Must(other->GetNodes("r0")).empty());
  CHECK(Must(other->GetScriptVersions("f1")).size() == 1);
  // A taken id leaves nothing behind.
  Status again = store->CreateForkedRun(fork, {MakeNode("r0", "z")});
  CHECK(again.kind() == ErrorKind::kPermanent);
  CHECK(Names(Must(other->GetNodes("f1"))) == std::vector<std::string>{"a", "m[1]"});
}

}  // namespace
}  // namespace keel::conformance
