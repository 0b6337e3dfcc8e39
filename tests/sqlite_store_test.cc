// SqliteStore writing on real files, one store at a time: group commit and
// Flush, event sequence numbers, batches that fail, write locks held by
// others, a database file replaced underneath. Lookups, claims, listing,
// garbage collection and breakers are in sqlite_store_runs_test.cc.

#include "store/sqlite/sqlite_store.h"

#include <doctest/doctest.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "tests/sqlite_test_util.h"

namespace keel {
namespace {

using testing::MakeEvent;
using testing::MakeNode;
using testing::MakeRun;
using testing::OpenStore;
using testing::RawDb;
using testing::ScratchDir;

TEST_CASE("records round-trip with every field") {
  ScratchDir dir;
  auto store = OpenStore(dir.Path("keel.db"));
  REQUIRE(store->CreateRun(MakeRun("r1")).ok());
  NodeRecord failed = MakeNode("r1", "b", NodeStatus::kFailed);
  failed.error_kind = ErrorKind::kRateLimited;
  failed.error_message = "429: slow down — ünïcode";
  failed.attempts = 3;
  store->SaveNode(MakeNode("r1", "a"));
  store->SaveNode(failed);
  store->AppendEvent({"r1", 0, 4.25, "b", "node_failed", R"({"attempt":3})"});
  store->FinishRun("r1", RunStatus::kFailed, "node b failed", 9.75);
  store->Heartbeat("r1", 8.5);
  REQUIRE(store->Flush().ok());

  auto nodes = store->GetNodes("r1");
  REQUIRE(nodes.ok());
  REQUIRE(nodes->size() == 2);
  CHECK((*nodes)[0].node == "a");
  CHECK((*nodes)[0].output_json == std::optional<std::string>(R"({"n":"a"})"));
  CHECK((*nodes)[0].error_kind == ErrorKind::kNone);
  const NodeRecord& b = (*nodes)[1];
  CHECK(b.status == NodeStatus::kFailed);
  CHECK(b.attempts == 3);
  CHECK_FALSE(b.output_json.has_value());
  CHECK(b.error_kind == ErrorKind::kRateLimited);
  CHECK(b.error_message == failed.error_message);
  CHECK(b.started_at == 1.5);
  CHECK(b.finished_at == 2.5);
  auto events = store->GetEvents("r1");
  REQUIRE(events.ok());
  REQUIRE(events->size() == 1);
  CHECK((*events)[0].seq == 1);
  CHECK((*events)[0].ts == 4.25);
  CHECK((*events)[0].node == "b");
  CHECK((*events)[0].kind == "node_failed");
  CHECK((*events)[0].data_json == R"({"attempt":3})");
  auto run = store->GetRun("r1");
  REQUIRE(run.ok());
  CHECK(run->status == RunStatus::kFailed);
  CHECK(run->error == "node b failed");
  CHECK(run->finished_at == 9.75);
  CHECK(run->updated_at == 9.75);
  CHECK(run->heartbeat == 8.5);
}

TEST_CASE("saving a node again updates it in place") {
  ScratchDir dir;
  auto store = OpenStore(dir.Path("keel.db"));
  store->SaveNode(MakeNode("r1", "first", NodeStatus::kRunning));
  store->SaveNode(MakeNode("r1", "second", NodeStatus::kRunning));
  store->SaveNode(MakeNode("r1", "first", NodeStatus::kSucceeded));
  REQUIRE(store->Flush().ok());
  auto nodes = store->GetNodes("r1");
  REQUIRE(nodes.ok());
  REQUIRE(nodes->size() == 2);
  CHECK((*nodes)[0].node == "first");
  CHECK((*nodes)[0].status == NodeStatus::kSucceeded);
  CHECK((*nodes)[1].node == "second");
}

TEST_CASE("10k queued records are all committed in queue order by Flush" * doctest::timeout(60)) {
  ScratchDir dir;
  auto store = OpenStore(dir.Path("keel.db"));
  constexpr int kCount = 10000;
  for (int i = 0; i < kCount; ++i) {
    store->SaveNode(MakeNode("r1", "n" + std::to_string(i)));
    store->AppendEvent(MakeEvent("r1", "e" + std::to_string(i)));
  }
  REQUIRE(store->Flush().ok());
  auto nodes = store->GetNodes("r1");
  auto events = store->GetEvents("r1");
  REQUIRE(nodes.ok());
  REQUIRE(events.ok());
  REQUIRE(nodes->size() == kCount);
  REQUIRE(events->size() == kCount);
  for (int i = 0; i < kCount; ++i) {
    CHECK((*nodes)[i].node == "n" + std::to_string(i));
    CHECK((*events)[i].kind == "e" + std::to_string(i));
    CHECK((*events)[i].seq == i + 1);
  }
}

TEST_CASE("records from many threads keep each thread's order" * doctest::timeout(60)) {
  for (int threads : {1, 2, 8}) {
    CAPTURE(threads);
    ScratchDir dir;
    auto store = OpenStore(dir.Path("keel.db"));
    constexpr int kPerThread = 1000;
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i) {
          store->AppendEvent(MakeEvent("r1", std::to_string(t), std::to_string(i)));
          store->SaveNode(MakeNode("r1", std::to_string(t) + "/" + std::to_string(i)));
          if (i % 250 == 0) CHECK(store->Flush().ok());
        }
      });
    }
    for (auto& w : workers) w.join();
    REQUIRE(store->Flush().ok());
    auto events = store->GetEvents("r1");
    REQUIRE(events.ok());
    REQUIRE(events->size() == static_cast<size_t>(threads * kPerThread));
    std::vector<int> next(threads, 0);
    for (size_t k = 0; k < events->size(); ++k) {
      const EventRecord& e = (*events)[k];
      CHECK(e.seq == static_cast<int64_t>(k) + 1);
      int t = std::stoi(e.kind);
      CHECK(std::stoi(e.data_json) == next[t]++);
    }
    auto nodes = store->GetNodes("r1");
    REQUIRE(nodes.ok());
    CHECK(nodes->size() == static_cast<size_t>(threads * kPerThread));
  }
}

TEST_CASE("event sequence numbers are per run and continue after reopening") {
  ScratchDir dir;
  const std::string path = dir.Path("keel.db");
  {
    auto store = OpenStore(path);
    for (int i = 0; i < 3; ++i) {
      store->AppendEvent(MakeEvent("a", "x"));
      store->AppendEvent(MakeEvent("b", "x"));
    }
  }
  auto store = OpenStore(path);
  store->AppendEvent(MakeEvent("a", "after"));
  store->AppendEvent(MakeEvent("c", "new"));
  REQUIRE(store->Flush().ok());
  auto a = store->GetEvents("a");
  REQUIRE(a.ok());
  REQUIRE(a->size() == 4);
  for (int i = 0; i < 4; ++i) CHECK((*a)[i].seq == i + 1);
  CHECK((*a)[3].kind == "after");
  CHECK(store->GetEvents("b")->size() == 3);
  CHECK(store->GetEvents("c")->at(0).seq == 1);
}

TEST_CASE("the destructor commits what is still queued") {
  ScratchDir dir;
  const std::string path = dir.Path("keel.db");
  {
    auto store = OpenStore(path);
    for (int i = 0; i < 1000; ++i) store->SaveNode(MakeNode("r1", std::to_string(i)));
  }
  CHECK(OpenStore(path)->GetNodes("r1")->size() == 1000);
}

TEST_CASE("a failed batch is retried, not skipped, and later writes wait behind it") {
  ScratchDir dir;
  const std::string path = dir.Path("keel.db");
  auto store = OpenStore(path);
  store->AppendEvent(MakeEvent("r1", "one"));
  REQUIRE(store->Flush().ok());
  // Another connection takes the sequence number the store will use next:
  // the batch fails once, and its retry reads the sequence again.
  RawDb(path).Exec(
      "INSERT INTO events (run_id, seq, ts, node, kind, data_json) "
      "VALUES ('r1', 2, 0, '', 'intruder', '{}')");
  store->AppendEvent(MakeEvent("r1", "two"));
  store->AppendEvent(MakeEvent("r1", "three"));
  REQUIRE(store->Flush().ok());
  CHECK(store->WriteHealth().ok());
  auto events = store->GetEvents("r1");
  REQUIRE(events.ok());
  REQUIRE(events->size() == 4);
  CHECK((*events)[1].kind == "intruder");
  CHECK((*events)[2].kind == "two");
  CHECK((*events)[3].kind == "three");
  CHECK((*events)[3].seq == 4);
}

TEST_CASE("a write lock held for a while delays the writes and loses none" *
          doctest::timeout(60)) {
  ScratchDir dir;
  const std::string path = dir.Path("keel.db");
  auto store = OpenStore(path, 10, 30);
  REQUIRE(store->CreateRun(MakeRun("r1")).ok());
  RawDb blocker(path);
  blocker.Exec("BEGIN IMMEDIATE");
  store->SaveNode(MakeNode("r1", "first"));
  store->SaveNode(MakeNode("r1", "second"));
  std::thread release([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    blocker.Exec("COMMIT");
  });
  Status flushed = store->Flush();
  release.join();
  REQUIRE(flushed.ok());
  auto nodes = store->GetNodes("r1");
  REQUIRE(nodes->size() == 2);
  CHECK((*nodes)[0].node == "first");
  CHECK((*nodes)[1].node == "second");
}

TEST_CASE("a write lock held past the stall timeout makes the store give up for good" *
          doctest::timeout(60)) {
  ScratchDir dir;
  const std::string path = dir.Path("keel.db");
  auto store = OpenStore(path, 0.05, 0.3);
  REQUIRE(store->CreateRun(MakeRun("r1")).ok());
  {
    RawDb blocker(path);
    blocker.Exec("BEGIN IMMEDIATE");
    store->SaveNode(MakeNode("r1", "lost"));
    Status busy = store->Flush();
    CHECK(busy.kind() == ErrorKind::kTransient);
    CHECK(busy.message().find("locked") != std::string::npos);
    CHECK(busy.message().find("another process") != std::string::npos);
    CHECK(store->WriteHealth().message() == busy.message());
    blocker.Exec("COMMIT");
  }
  // Nothing is written after giving up, so the durable record stays a
  // prefix of what was queued.
  store->SaveNode(MakeNode("r1", "after"));
  CHECK_FALSE(store->Flush().ok());
  CHECK_FALSE(store->CreateRun(MakeRun("r2")).ok());
  CHECK(store->GetNodes("r1")->empty());
}

TEST_CASE("a database file deleted or replaced under the store stops its writes") {
  ScratchDir dir;
  const std::string path = dir.Path("keel.db");
  auto store = OpenStore(path);
  REQUIRE(store->CreateRun(MakeRun("r1")).ok());
  store->SaveNode(MakeNode("r1", "a"));
  REQUIRE(store->Flush().ok());
  SUBCASE("deleted") {
    REQUIRE(std::remove(path.c_str()) == 0);
    store->SaveNode(MakeNode("r1", "b"));
    Status flushed = store->Flush();
    REQUIRE_FALSE(flushed.ok());
    CHECK(flushed.message().find("was deleted") != std::string::npos);
  }
  SUBCASE("replaced") {
    const std::string other = dir.Path("other.db");
    OpenStore(other);
    REQUIRE(std::rename(other.c_str(), path.c_str()) == 0);
    store->SaveNode(MakeNode("r1", "b"));
    Status flushed = store->Flush();
    REQUIRE_FALSE(flushed.ok());
    CHECK(flushed.message().find("was replaced") != std::string::npos);
  }
}

}  // namespace
}  // namespace keel
