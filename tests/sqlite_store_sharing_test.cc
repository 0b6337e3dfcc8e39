// Several SqliteStores on one database file: stores in one process and in
// two processes writing at once, readers during writes, a writer killed
// mid-run, and breaker updates that must never be lost.

#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include "store/sqlite/sqlite_store.h"
#include "tests/sqlite_test_util.h"

namespace keel {
namespace {

using testing::MakeEvent;
using testing::MakeNode;
using testing::OpenStore;
using testing::ScratchDir;
using testing::WriteLoad;

TEST_CASE("two stores on one file write concurrently and both commit everything" *
          doctest::timeout(120)) {
  ScratchDir dir;
  const std::string path = dir.Path("keel.db");
  auto a = OpenStore(path);
  auto b = OpenStore(path);
  std::thread ta([&] { WriteLoad(a.get(), "from-a", 4, 4000); });
  std::thread tb([&] { WriteLoad(b.get(), "from-b", 4, 4000); });
  ta.join();
  tb.join();
  REQUIRE(a->Flush().ok());
  REQUIRE(b->Flush().ok());
  for (Store* reader : {static_cast<Store*>(a.get()), static_cast<Store*>(b.get())}) {
    CHECK(reader->GetNodes("from-a")->size() == 4000);
    CHECK(reader->GetNodes("from-b")->size() == 4000);
    CHECK(reader->GetEvents("from-b")->back().seq == 4000);
  }
}

TEST_CASE("two processes write one database while it is being read" * doctest::timeout(120)) {
  ScratchDir dir;
  const std::string path = dir.Path("keel.db");
  OpenStore(path).reset();  // create it before the fork, with no thread running
  int go[2];
  REQUIRE(pipe(go) == 0);
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    char byte;
    if (read(go[0], &byte, 1) != 1) _exit(2);
    auto store = SqliteStore::Open(path, SqliteStoreOptions{});
    if (!store.ok()) _exit(3);
    for (int round = 0; round < 10; ++round) {
      WriteLoad(store->get(), "child-" + std::to_string(round), 2, 2000);
      if (!(*store)->Flush().ok()) _exit(4);
    }
    _exit(0);
  }
  auto store = OpenStore(path);
  REQUIRE(write(go[1], "g", 1) == 1);
  std::thread writer([&] { WriteLoad(store.get(), "parent", 2, 20000); });
  int reads = 0;
  int status = 0;
  while (waitpid(child, &status, WNOHANG) == 0) {
    REQUIRE(store->GetNodes("child-0").ok());
    REQUIRE(store->ListRuns(RunFilter{}).ok());
    ++reads;
  }
  writer.join();
  close(go[0]);
  close(go[1]);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  REQUIRE(store->Flush().ok());
  for (int round = 0; round < 10; ++round) {
    CHECK(store->GetNodes("child-" + std::to_string(round))->size() == 2000);
    CHECK(store->GetEvents("child-" + std::to_string(round))->size() == 2000);
  }
  CHECK(store->GetNodes("parent")->size() == 20000);
  MESSAGE("reads during the child's writes: " << reads);
}

TEST_CASE("a database whose writer was killed reopens with everything it committed" *
          doctest::timeout(60)) {
  ScratchDir dir;
  const std::string path = dir.Path("keel.db");
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    auto store = SqliteStore::Open(path, SqliteStoreOptions{});
    if (!store.ok()) _exit(3);
    WriteLoad(store->get(), "r1", 1, 1000);
    if (!(*store)->Flush().ok()) _exit(4);
    (*store)->SaveNode(MakeNode("r1", "maybe"));  // queued, perhaps never committed
    kill(getpid(), SIGKILL);
    _exit(5);
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  REQUIRE(WIFSIGNALED(status));
  CHECK(testing::Exists(path + "-wal"));
  auto store = OpenStore(path);
  auto nodes = store->GetNodes("r1");
  REQUIRE(nodes.ok());
  CHECK(nodes->size() >= 1000);
  CHECK(nodes->size() <= 1001);
  CHECK(store->GetEvents("r1")->size() == 1000);
  store->AppendEvent(MakeEvent("r1", "after"));
  REQUIRE(store->Flush().ok());
  CHECK(store->GetEvents("r1")->back().seq == 1001);
}

TEST_CASE("breaker updates from two stores and many threads are never lost" *
          doctest::timeout(120)) {
  ScratchDir dir;
  const std::string path = dir.Path("keel.db");
  auto a = OpenStore(path);
  auto b = OpenStore(path);
  constexpr int kThreads = 4;
  constexpr int kUpdates = 200;
  std::vector<std::thread> workers;
  for (int t = 0; t < kThreads; ++t) {
    Store* store = t % 2 ? static_cast<Store*>(a.get()) : static_cast<Store*>(b.get());
    workers.emplace_back([store, t] {
      for (int i = 0; i < kUpdates; ++i) {
        // Interleave queued writes, which the breaker update must not wait for.
        store->SaveNode(MakeNode("run", std::to_string(t) + "/" + std::to_string(i)));
        auto result = store->UpdateBreaker("shared", [](BreakerSnapshot& s) { ++s.calls; });
        CHECK(result.ok());
      }
    });
  }
  for (auto& w : workers) w.join();
  REQUIRE(a->Flush().ok());
  REQUIRE(b->Flush().ok());
  auto rows = a->ListBreakers();
  REQUIRE(rows->size() == 1);
  CHECK((*rows)[0].snapshot.calls == kThreads * kUpdates);
  CHECK(a->GetNodes("run")->size() == kThreads * kUpdates);
}

}  // namespace
}  // namespace keel
