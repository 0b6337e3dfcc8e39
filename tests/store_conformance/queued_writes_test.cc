// Queued writes: committed in queue order (per thread, across threads),
// made durable by Flush, FinishNode's node and event together, sequence
// numbers per run, and fencing: once another store claimed a run, this
// store's writes for it are refused and it writes nothing more.

#include <atomic>
#include <thread>
#include <vector>

#include "tests/store_conformance/conformance.h"

namespace keel::conformance {
namespace {

KEEL_CONFORMANCE_SUITE;

TEST_CASE("every field of queued records round-trips after Flush" * doctest::timeout(60)) {
  KEEL_FRESH_BACKEND(db);
  auto store = db->Open();
  Create(*store, "r1");
  NodeRecord failed = MakeNode("r1", "b", NodeStatus::kFailed);
  failed.error_kind = ErrorKind::kRateLimited;
  failed.error_message = "429: slow down — ünïcode";
  failed.attempts = 3;
  store->SaveNode(MakeNode("r1", "a"));
  store->SaveNode(failed);
  store->AppendEvent({"r1", 0, 4.25, "b", "node_failed", R"({"attempt":3})"});
  store->FinishRun("r1", RunStatus::kFailed, "node b failed", 9.75);
  store->Heartbeat("r1", 8.5);
  Flushed(*store);
  CHECK(store->Backlog() == 0);
  CHECK_OK(store->WriteHealth());

  auto reader = db->OpenSecond();
  auto nodes = Must(reader->GetNodes("r1"));
  REQUIRE(nodes.size() == 2);
  CHECK(nodes[0].node == "a");
  CHECK(nodes[0].run_id == "r1");
  CHECK(nodes[0].output_json == std::optional<std::string>(R"({"n":"a"})"));
  CHECK(nodes[0].error_kind == ErrorKind::kNone);
  CHECK(nodes[0].script_version == 1);
  const NodeRecord& b = nodes[1];
  CHECK(b.status == NodeStatus::kFailed);
  CHECK(b.attempts == 3);
  CHECK_FALSE(b.output_json.has_value());
  CHECK(b.error_kind == ErrorKind::kRateLimited);
  CHECK(b.error_message == failed.error_message);
  CHECK(b.started_at == 1.5);
  CHECK(b.finished_at == 2.5);
  auto events = Must(reader->GetEvents("r1"));
  REQUIRE(events.size() == 1);
  CHECK(events[0].run_id == "r1");
  CHECK(events[0].seq == 1);
  CHECK(events[0].ts == 4.25);
  CHECK(events[0].node == "b");
  CHECK(events[0].kind == "node_failed");
  CHECK(events[0].data_json == R"({"attempt":3})");
  RunRecord run = RunOf(*reader, "r1");
  CHECK(run.status == RunStatus::kFailed);
  CHECK(run.error == "node b failed");
  CHECK(run.finished_at == 9.75);
  CHECK(run.updated_at == 9.75);
  CHECK(run.heartbeat == 8.5);
}

TEST_CASE("saving a node again replaces it in place, keeping its first-insert position" *
          doctest::timeout(60)) {
  KEEL_FRESH_BACKEND(db);
  auto store = db->Open();
  Create(*store, "r1");
  store->SaveNode(MakeNode("r1", "first", NodeStatus::kRunning));
  store->SaveNode(MakeNode("r1", "second", NodeStatus::kRunning));
  NodeRecord done = MakeNode("r1", "first", NodeStatus::kSucceeded);
  done.attempts = 4;
  store->SaveNode(done);
  Flushed(*store);
  auto nodes = Must(store->GetNodes("r1"));
  REQUIRE(nodes.size() == 2);
  CHECK(nodes[0].node == "first");
  CHECK(nodes[0].status == NodeStatus::kSucceeded);
  CHECK(nodes[0].attempts == 4);
  CHECK(nodes[0].output_json == done.output_json);
  CHECK(nodes[1].node == "second");
}

TEST_CASE("5000 queued records are committed in queue order by Flush" * doctest::timeout(180)) {
  KEEL_FRESH_BACKEND(db);
  auto store = db->Open();
  Create(*store, "r1");
  constexpr int kCount = 5000;
  for (int i = 0; i < kCount; ++i) {
    store->SaveNode(MakeNode("r1", "n" + std::to_string(i)));
    store->AppendEvent(MakeEvent("r1", "e" + std::to_string(i)));
  }
  Flushed(*store);
  CHECK(store->Backlog() == 0);
  auto nodes = Must(store->GetNodes("r1"));
  auto events = Must(store->GetEvents("r1"));
  REQUIRE(nodes.size() == kCount);
  REQUIRE(events.size() == kCount);
  int wrong = 0;
  for (int i = 0; i < kCount; ++i) {
    if (nodes[i].node != "n" + std::to_string(i)) ++wrong;
    if (events[i].kind != "e" + std::to_string(i) || events[i].seq != i + 1) ++wrong;
  }
  CHECK(wrong == 0);
}

TEST_CASE("records from many threads keep each thread's order" * doctest::timeout(180)) {
  KEEL_FRESH_BACKEND(db);
  auto store = db->Open();
  Create(*store, "r1");
  constexpr int kThreads = 4;
  constexpr int kPerThread = 500;
  std::vector<std::thread> workers;
  std::atomic<int> flush_errors{0};
  for (int t = 0; t < kThreads; ++t) {
    workers.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        store->AppendEvent(MakeEvent("r1", std::to_string(t), std::to_string(i)));
        store->SaveNode(MakeNode("r1", std::to_string(t) + "/" + std::to_string(i)));
        if (i % 125 == 0 && !store->Flush().ok()) ++flush_errors;
      }
    });
  }
  for (auto& w : workers) w.join();
  Flushed(*store);
  CHECK(flush_errors == 0);
  auto events = Must(store->GetEvents("r1"));
  REQUIRE(events.size() == static_cast<size_t>(kThreads * kPerThread));
  std::vector<int> next(kThreads, 0);
  int wrong = 0;
  for (size_t k = 0; k < events.size(); ++k) {
    const EventRecord& e = events[k];
    if (e.seq != static_cast<int64_t>(k) + 1) ++wrong;
    int t = std::stoi(e.kind);
    if (std::stoi(e.data_json) != next[t]++) ++wrong;
  }
  CHECK(wrong == 0);
  CHECK(Must(store->GetNodes("r1")).size() == static_cast<size_t>(kThreads * kPerThread));
}

TEST_CASE("event sequence numbers are per run and continue in another store" *
          doctest::timeout(60)) {
  KEEL_FRESH_BACKEND(db);
  {
    auto store = db->Open();
    for (const char* id : {"a", "b", "c"}) Create(*store, id);
    for (int i = 0; i < 3; ++i) {
      store->AppendEvent(MakeEvent("a", "x"));
      store->AppendEvent(MakeEvent("b", "x"));
    }
    Flushed(*store);
  }
  auto store = db->OpenSecond();
  store->AppendEvent(MakeEvent("a", "after"));
  store->AppendEvent(MakeEvent("c", "new"));
  Flushed(*store);
  auto a = Must(store->GetEvents("a"));
  REQUIRE(a.size() == 4);
  for (int i = 0; i < 4; ++i) CHECK(a[i].seq == i + 1);
  CHECK(a[3].kind == "after");
  CHECK(Must(store->GetEvents("b")).size() == 3);
  CHECK(Must(store->GetEvents("c")).at(0).seq == 1);
}

TEST_CASE("two stores appending to one run at once number its events without a gap" *
          doctest::timeout(180)) {
  KEEL_FRESH_BACKEND(db);
  auto a = db->Open();
  auto b = db->OpenSecond();
  Create(*a, "r1");
  constexpr int kEach = 300;
  auto write = [](Store* store, const std::string& kind) {
    for (int i = 0; i < kEach; ++i) {
      store->AppendEvent(MakeEvent("r1", kind, std::to_string(i)));
      if (i % 50 == 0) (void)store->Flush();
    }
  };
  std::thread ta(write, a.get(), "a");
  std::thread tb(write, b.get(), "b");
  ta.join();
  tb.join();
  Flushed(*a);
  Flushed(*b);
  auto events = Must(a->GetEvents("r1"));
  REQUIRE(events.size() == 2 * kEach);
  int next_a = 0, next_b = 0, wrong = 0;
  for (size_t k = 0; k < events.size(); ++k) {
    if (events[k].seq != static_cast<int64_t>(k) + 1) ++wrong;
    int& next = events[k].kind == "a" ? next_a : next_b;
    if (std::stoi(events[k].data_json) != next++) ++wrong;
  }
  CHECK(wrong == 0);
}

TEST_CASE("the destructor commits what is still queued" * doctest::timeout(60)) {
  KEEL_FRESH_BACKEND(db);
  {
    auto store = db->Open();
    Create(*store, "r1");
    for (int i = 0; i < 500; ++i) store->SaveNode(MakeNode("r1", std::to_string(i)));
    store->FinishRun("r1", RunStatus::kSucceeded, "", 9);
  }
  auto store = db->OpenSecond();
  CHECK(Must(store->GetNodes("r1")).size() == 500);
  CHECK(RunOf(*store, "r1").status == RunStatus::kSucceeded);
}

TEST_CASE("FinishNode commits the node and its event together" * doctest::timeout(180)) {
  KEEL_FRESH_BACKEND(db);
  auto writer = db->Open();
  auto reader = db->OpenSecond();
  Create(*writer, "r1");
  constexpr int kNodes = 300;
  std::atomic<bool> done{false};
  std::thread write([&] {
    for (int i = 0; i < kNodes; ++i) {
      const std::string name = "n" + std::to_string(i);
      writer->SaveNode(MakeNode("r1", name, NodeStatus::kRunning));
      writer->FinishNode(MakeNode("r1", name), MakeEvent("r1", "node_succeeded", "{}", name));
      if (i % 20 == 0) (void)writer->Flush();
    }
    (void)writer->Flush();
    done = true;
  });
  // Events read before nodes: every finish event's node is seen finished.
  // Nodes read before events: every finished node's event is seen.
  int torn = 0, reads = 0;
  while (!done || reads < 2) {
    ++reads;
    auto events = reader->GetEvents("r1");
    auto nodes = reader->GetNodes("r1");
    auto later_events = reader->GetEvents("r1");
    if (!events.ok() || !nodes.ok() || !later_events.ok()) {
      ++torn;
      break;
    }
    for (const EventRecord& e : *events) {
      const NodeRecord* n = FindNode(*nodes, e.node);
      if (n == nullptr || n->status != NodeStatus::kSucceeded) ++torn;
    }
    size_t finished = 0;
    for (const NodeRecord& n : *nodes) finished += n.status == NodeStatus::kSucceeded;
    if (later_events->size() < finished) ++torn;
  }
  write.join();
  CHECK(torn == 0);
  MESSAGE("reads while writing: " << reads);
  CHECK(Must(reader->GetEvents("r1")).size() == kNodes);
  for (const NodeRecord& n : Must(reader->GetNodes("r1"))) {
    CHECK(n.status == NodeStatus::kSucceeded);
  }
}

TEST_CASE("after another store claims the run, this store's writes are refused for good" *
          doctest::timeout(60)) {
  KEEL_FRESH_BACKEND(db);
  auto first = db->Open();
  auto second = db->OpenSecond();
  RunRecord run = MakeRun("r1", 100);
  REQUIRE_OK(first->CreateRun(run));
  Create(*first, "r2");
  first->SaveNode(MakeNode("r1", "a"));
  Flushed(*first);

  REQUIRE_OK(second->ClaimRun(run, 1, kDead));
  first->SaveNode(MakeNode("r1", "b"));
  first->AppendEvent(MakeEvent("r1", "stale"));
  first->Heartbeat("r1", 999);
  // Writes queued after the refused one, even for another run, never land.
  first->SaveNode(MakeNode("r2", "later"));
  first->AppendEvent(MakeEvent("r2", "later"));
  Status flushed = first->Flush();
  REQUIRE_FALSE(flushed.ok());
  CHECK(flushed.kind() == ErrorKind::kPermanent);
  CHECK(Contains(flushed.message(), "taken over"));
  Status health = first->WriteHealth();
  CHECK(health.kind() == ErrorKind::kPermanent);
  CHECK(health.message() == flushed.message());
  first->SaveNode(MakeNode("r2", "even-later"));
  CHECK_FALSE(first->Flush().ok());
  CHECK_FALSE(first->CreateRun(MakeRun("r3")).ok());

  CHECK(Names(Must(second->GetNodes("r1"))) == std::vector<std::string>{"a"});
  CHECK(Must(second->GetEvents("r1")).empty());
  CHECK(RunOf(*second, "r1").heartbeat == 100);
  CHECK(Must(second->GetNodes("r2")).empty());
  CHECK(Must(second->GetEvents("r2")).empty());
  CHECK_FALSE(second->GetRun("r3").ok());

  // The new holder writes on.
  second->SaveNode(MakeNode("r1", "b"));
  second->FinishRun("r1", RunStatus::kSucceeded, "", 200);
  Flushed(*second);
  CHECK_OK(second->WriteHealth());
  CHECK(Names(Must(second->GetNodes("r1"))) == std::vector<std::string>{"a", "b"});
}

TEST_CASE("FinishRun with interrupted or waiting keeps no finish time" * doctest::timeout(60)) {
  KEEL_FRESH_BACKEND(db);
  auto store = db->Open();
  for (const char* id : {"stopped", "parked", "done"}) Create(*store, id);
  store->FinishRun("stopped", RunStatus::kInterrupted, "interrupted by SIGTERM", 5);
  store->FinishRun("parked", RunStatus::kWaiting, "", 6);
  store->FinishRun("done", RunStatus::kDegraded, "partly", 7);
  Flushed(*store);
  RunRecord stopped = RunOf(*store, "stopped");
  CHECK(stopped.status == RunStatus::kInterrupted);
  CHECK(stopped.finished_at == 0);
  CHECK(stopped.updated_at == 5);
  CHECK(stopped.error == "interrupted by SIGTERM");
  RunRecord parked = RunOf(*store, "parked");
  CHECK(parked.status == RunStatus::kWaiting);
  CHECK(parked.finished_at == 0);
  CHECK(parked.updated_at == 6);
  RunRecord done = RunOf(*store, "done");
  CHECK(done.status == RunStatus::kDegraded);
  CHECK(done.finished_at == 7);
  CHECK(done.error == "partly");
}

}  // namespace
}  // namespace keel::conformance
