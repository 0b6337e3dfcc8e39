// SqliteStore's writer when storage fails (through FaultVfs) or another
// process holds the lock: a failed batch is retried, never skipped; what was
// queued after it waits; commits stay in queue order; Flush returns ok only
// once everything before it is committed; WriteHealth turns to an error
// naming the cause only after stall_timeout. Claims through the same VFS are
// in sqlite_store_claim_fault_test.cc.
//
// The store's retry waits are real time, so each case keeps its timeouts small.

#include <doctest/doctest.h>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "store/sqlite/sqlite_store.h"
#include "tests/sqlite_test_util.h"
#include "tests/sqlite_fault_util.h"
#include "tests/support/fault_vfs.h"

namespace keel {
namespace {

using testing::FaultOp;
using testing::CleanVfs;
using testing::FaultVfs;
using testing::MakeEvent;
using testing::MakeNode;
using testing::MakeRun;
using testing::OpenFaultStore;
using testing::RawDb;
using testing::Vfs;
using testing::ScratchDir;
using SteadyClock = std::chrono::steady_clock;

constexpr int kTimeoutS = 30;

double Since(SteadyClock::time_point start) {
  return std::chrono::duration<double>(SteadyClock::now() - start).count();
}

// Polls `condition` until it holds (true) or `seconds` pass (false).
bool Eventually(const std::function<bool()>& condition, double seconds) {
  const auto start = SteadyClock::now();
  while (!condition()) {
    if (Since(start) > seconds) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}


// Events numbered by `data` {"i":N}: the committed ones, read behind the
// store's back, must be exactly 0..k-1 in sequence order — a prefix of what
// was queued.
int64_t CommittedPrefix(const std::string& path, const std::string& run_id) {
  RawDb raw(path);
  const int64_t count =
      raw.Int("SELECT count(*) FROM events WHERE run_id = '" + run_id + "' AND kind = 'n'");
  const int64_t in_order =
      raw.Int("SELECT count(*) FROM events WHERE run_id = '" + run_id +
              "' AND kind = 'n' AND json_extract(data_json, '$.i') = "
              "(SELECT count(*) FROM events e2 WHERE e2.run_id = events.run_id AND e2.kind = 'n' "
              "AND e2.seq < events.seq)");
  CHECK_MESSAGE(in_order == count, "events committed out of queue order or with a gap");
  return count;
}

void QueueNumbered(Store* store, const std::string& run_id, int from, int to) {
  for (int i = from; i < to; ++i) {
    store->AppendEvent(MakeEvent(run_id, "n", "{\"i\":" + std::to_string(i) + "}"));
  }
}

int64_t NodeRows(const std::string& path, const std::string& run_id) {
  return RawDb(path).Int("SELECT count(*) FROM nodes WHERE run_id = '" + run_id + "'");
}

}  // namespace

TEST_CASE("a batch that fails is retried, not skipped" * doctest::timeout(kTimeoutS)) {
  struct Fault {
    const char* what;
    FaultOp op;
    int error;
  };
  for (Fault fault : {Fault{"disk full", FaultOp::kWrite, SQLITE_FULL},
                      Fault{"write error", FaultOp::kWrite, SQLITE_IOERR_WRITE},
                      Fault{"lock held", FaultOp::kWriteLock, SQLITE_BUSY}}) {
    const std::string what = fault.what;
    CAPTURE(what);
    CleanVfs clean;
    ScratchDir dir;
    const std::string path = dir.Path("keel.db");
    auto store = OpenFaultStore(path);
    REQUIRE(store->CreateRun(MakeRun("r1")).ok());
    // Several failures in a row: the batch must outlast more than one retry.
    Vfs().FailNext(fault.op, fault.error, 3);
    store->SaveNode(MakeNode("r1", "a"));
    store->SaveNode(MakeNode("r1", "b"));
    QueueNumbered(store.get(), "r1", 0, 20);
    Status flushed = store->Flush();
    CHECK_MESSAGE(flushed.ok(), flushed.ToString());
    CHECK(Vfs().Injected(fault.op) == 3);
    CHECK(store->WriteHealth().ok());
    CHECK(NodeRows(path, "r1") == 2);
    CHECK(CommittedPrefix(path, "r1") == 20);
  }
}

TEST_CASE("while a batch fails, later batches wait behind it and commit in order" *
          doctest::timeout(kTimeoutS)) {
  CleanVfs clean;
  ScratchDir dir;
  const std::string path = dir.Path("keel.db");
  auto store = OpenFaultStore(path, /*stall_timeout=*/10);
  REQUIRE(store->CreateRun(MakeRun("r1")).ok());
  QueueNumbered(store.get(), "r1", 0, 5);
  REQUIRE(store->Flush().ok());

  Vfs().FailAlways(FaultOp::kWrite, SQLITE_FULL, testing::kWalFile);
  // Three waves, far enough apart to be separate batches.
  for (int wave = 0; wave < 3; ++wave) {
    QueueNumbered(store.get(), "r1", 5 + wave * 10, 15 + wave * 10);
    store->SaveNode(MakeNode("r1", "n" + std::to_string(wave), NodeStatus::kRunning));
    store->SaveNode(MakeNode("r1", "n" + std::to_string(wave)));
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
  }
  REQUIRE(Eventually([] { return Vfs().Injected(FaultOp::kWrite) >= 2; }, 5));
  // Nothing of the three waves is committed, and nobody has given up yet.
  CHECK(CommittedPrefix(path, "r1") == 5);
  CHECK(NodeRows(path, "r1") == 0);
  CHECK(store->WriteHealth().ok());

  auto flush = std::async(std::launch::async, [&] { return store->Flush(); });
  CHECK(flush.wait_for(std::chrono::milliseconds(300)) == std::future_status::timeout);
  Vfs().Clear(FaultOp::kWrite);
  REQUIRE(flush.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  Status flushed = flush.get();
  CHECK_MESSAGE(flushed.ok(), flushed.ToString());
  CHECK(CommittedPrefix(path, "r1") == 35);
  auto nodes = store->GetNodes("r1");
  REQUIRE(nodes.ok());
  REQUIRE(nodes->size() == 3);
  for (const NodeRecord& node : *nodes) {
    CAPTURE(node.node);
    CHECK(node.status == NodeStatus::kSucceeded);  // the later record of each node won
  }
  CHECK(store->WriteHealth().ok());
}

TEST_CASE("faults at random moments of a steady load never reorder or lose a record" *
          doctest::timeout(kTimeoutS)) {
  CleanVfs clean;
  ScratchDir dir;
  const std::string path = dir.Path("keel.db");
  auto store = OpenFaultStore(path, /*stall_timeout=*/10);
  REQUIRE(store->CreateRun(MakeRun("r1")).ok());
  std::atomic<bool> done{false};
  std::thread faults([&] {
    const FaultOp ops[] = {FaultOp::kWrite, FaultOp::kWrite, FaultOp::kWriteLock, FaultOp::kSync};
    const int errors[] = {SQLITE_FULL, SQLITE_IOERR_WRITE, SQLITE_BUSY, SQLITE_IOERR_FSYNC};
    for (uint32_t i = 0; !done.load(); ++i) {
      const int k = static_cast<int>(i % 4);
      Vfs().Fail(ops[k], errors[k], 1 + i % 3, testing::kAnyFile, i % 3);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  constexpr int kCount = 2000;
  for (int i = 0; i < kCount; i += 20) {
    QueueNumbered(store.get(), "r1", i, i + 20);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  done = true;
  faults.join();
  Vfs().ClearAll();
  Status flushed = store->Flush();
  CHECK_MESSAGE(flushed.ok(), flushed.ToString());
  MESSAGE(Vfs().TotalInjected() << " faults injected");
  CHECK(Vfs().TotalInjected() > 0);
  CHECK(CommittedPrefix(path, "r1") == kCount);
  CHECK(RawDb(path).Text("PRAGMA integrity_check") == "ok");
}

TEST_CASE("Flush returns only once everything queued before it is committed" *
          doctest::timeout(kTimeoutS)) {
  CleanVfs clean;
  ScratchDir dir;
  const std::string path = dir.Path("keel.db");
  auto store = OpenFaultStore(path);
  REQUIRE(store->CreateRun(MakeRun("r1")).ok());
  for (int round = 0; round < 5; ++round) {
    CAPTURE(round);
    Vfs().FailNext(round % 2 ? FaultOp::kWriteLock : FaultOp::kWrite,
                   round % 2 ? SQLITE_BUSY : SQLITE_FULL, 1 + round);
    QueueNumbered(store.get(), "r1", round * 100, round * 100 + 100);
    Status flushed = store->Flush();
    CHECK_MESSAGE(flushed.ok(), flushed.ToString());
    CHECK(CommittedPrefix(path, "r1") == round * 100 + 100);
  }
}

TEST_CASE("storage failing past stall_timeout: WriteHealth and Flush name the cause" *
          doctest::timeout(kTimeoutS)) {
  struct Fault {
    FaultOp op;
    int error;
    const char* cause;
  };
  for (Fault fault : {Fault{FaultOp::kWrite, SQLITE_FULL, "database or disk is full"},
                      Fault{FaultOp::kWrite, SQLITE_IOERR_WRITE, "disk I/O error"},
                      Fault{FaultOp::kWriteLock, SQLITE_BUSY, "another process"}}) {
    const std::string cause = fault.cause;
    CAPTURE(cause);
    CleanVfs clean;
    ScratchDir dir;
    const std::string path = dir.Path("keel.db");
    constexpr double kStall = 0.4;
    auto store = OpenFaultStore(path, kStall);
    REQUIRE(store->CreateRun(MakeRun("r1")).ok());
    QueueNumbered(store.get(), "r1", 0, 3);
    REQUIRE(store->Flush().ok());

    Vfs().FailAlways(fault.op, fault.error);
    const auto start = SteadyClock::now();
    QueueNumbered(store.get(), "r1", 3, 10);
    CHECK(store->WriteHealth().ok());
    REQUIRE(Eventually([&] { return !store->WriteHealth().ok(); }, 10));
    const double stalled = Since(start);
    MESSAGE("WriteHealth turned after " << stalled << " s");
    CHECK(stalled >= kStall * 0.9);
    CHECK(stalled < kStall + 5);
    Status health = store->WriteHealth();
    CAPTURE(health.message());
    CHECK(health.message().find(fault.cause) != std::string::npos);
    if (fault.op == FaultOp::kWriteLock) {
      CHECK(health.message().find("database is locked") != std::string::npos);
    }
    CHECK(health.message().find(path) != std::string::npos);

    // Flush does not wait for storage that has been declared unavailable.
    const auto flush_start = SteadyClock::now();
    Status flushed = store->Flush();
    CHECK_FALSE(flushed.ok());
    CHECK(flushed.message().find(fault.cause) != std::string::npos);
    CHECK(Since(flush_start) < 2);
    CHECK(CommittedPrefix(path, "r1") == 3);
    Vfs().ClearAll();
    // Whatever the store does from here, what is committed stays a prefix
    // of what was queued.
    store.reset();
    CHECK(CommittedPrefix(path, "r1") >= 3);
  }
}

TEST_CASE("a Flush waiting on failing storage returns the error once stall_timeout passes" *
          doctest::timeout(kTimeoutS)) {
  CleanVfs clean;
  ScratchDir dir;
  const std::string path = dir.Path("keel.db");
  auto store = OpenFaultStore(path, /*stall_timeout=*/0.5);
  REQUIRE(store->CreateRun(MakeRun("r1")).ok());
  Vfs().FailAlways(FaultOp::kWrite, SQLITE_FULL);
  const auto start = SteadyClock::now();
  QueueNumbered(store.get(), "r1", 0, 10);
  Status flushed = store->Flush();
  const double waited = Since(start);
  MESSAGE("Flush returned after " << waited << " s");
  CHECK_FALSE(flushed.ok());
  CHECK(flushed.message().find("database or disk is full") != std::string::npos);
  CHECK(waited >= 0.45);
  CHECK(waited < 5);
  CHECK(CommittedPrefix(path, "r1") == 0);
}

TEST_CASE("a failure shorter than stall_timeout leaves WriteHealth ok throughout" *
          doctest::timeout(kTimeoutS)) {
  CleanVfs clean;
  ScratchDir dir;
  const std::string path = dir.Path("keel.db");
  auto store = OpenFaultStore(path, /*stall_timeout=*/3);
  REQUIRE(store->CreateRun(MakeRun("r1")).ok());
  Vfs().FailAlways(FaultOp::kWrite, SQLITE_IOERR_WRITE);
  QueueNumbered(store.get(), "r1", 0, 10);
  const auto start = SteadyClock::now();
  bool healthy = true;
  while (Since(start) < 0.5) {
    healthy = healthy && store->WriteHealth().ok();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  CHECK(healthy);
  CHECK(Vfs().Injected(FaultOp::kWrite) >= 1);
  Vfs().ClearAll();
  Status flushed = store->Flush();
  CHECK_MESSAGE(flushed.ok(), flushed.ToString());
  CHECK(store->WriteHealth().ok());
  CHECK(CommittedPrefix(path, "r1") == 10);
}

TEST_CASE("another process holding the write lock: the store waits, then names it" *
          doctest::timeout(kTimeoutS)) {
  CleanVfs clean;
  ScratchDir dir;
  const std::string path = dir.Path("keel.db");
  {
    auto store = OpenFaultStore(path, /*stall_timeout=*/2, /*busy_timeout=*/0.05);
    REQUIRE(store->CreateRun(MakeRun("r1")).ok());
    RawDb blocker(path);
    blocker.Exec("BEGIN EXCLUSIVE");
    QueueNumbered(store.get(), "r1", 0, 10);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    CHECK(store->WriteHealth().ok());
    blocker.Exec("COMMIT");
    Status flushed = store->Flush();
    CHECK_MESSAGE(flushed.ok(), flushed.ToString());
    CHECK(CommittedPrefix(path, "r1") == 10);
  }
  {
    auto store = OpenFaultStore(path, /*stall_timeout=*/0.5, /*busy_timeout=*/0.05);
    RawDb blocker(path);
    blocker.Exec("BEGIN EXCLUSIVE");
    QueueNumbered(store.get(), "r1", 10, 20);
    Status flushed = store->Flush();
    CAPTURE(flushed.message());
    CHECK_FALSE(flushed.ok());
    CHECK(flushed.message().find("database is locked") != std::string::npos);
    CHECK(flushed.message().find("another process") != std::string::npos);
    CHECK(store->WriteHealth().message() == flushed.message());
    blocker.Exec("COMMIT");
  }
  CHECK(CommittedPrefix(path, "r1") >= 10);
}

}  // namespace keel
