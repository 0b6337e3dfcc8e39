// The SQLite store's schedule ticks: a tick and its queued run are recorded
// together or not at all, a tick is recorded once across stores (processes)
// on one database, and the last tick per schedule reads back.

#include <doctest/doctest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "store/sqlite/sqlite_store.h"
#include "tests/sqlite_test_util.h"

namespace keel {
namespace {

using testing::MakeRun;
using testing::OpenStore;
using testing::RawDb;
using testing::ScratchDir;
using Outcome = Store::TickOutcome;

RunRecord Queued(const std::string& id) {
  RunRecord run = MakeRun(id, 100);
  run.status = RunStatus::kQueued;
  run.owner = Owner{};
  run.heartbeat = 0;
  return run;
}

}  // namespace

TEST_CASE("a tick creates its queued run once; a second record is refused" * doctest::timeout(30)) {
  ScratchDir dir;
  auto store = OpenStore(dir.Path("keel.db"));
  auto first = store->RecordScheduleTick("a.lua#1", 1000, Queued("r1"));
  REQUIRE(first.ok());
  CHECK(*first == Outcome::kCreated);
  auto run = store->GetRun("r1");
  REQUIRE(run.ok());
  CHECK(run->status == RunStatus::kQueued);
  CHECK(run->owner.pid == 0);
  CHECK(run->script_text == "return keel.workflow 'wf' {}");
  CHECK(store->GetNodes("r1")->empty());

  auto again = store->RecordScheduleTick("a.lua#1", 1000, Queued("r2"));
  REQUIRE(again.ok());
  CHECK(*again == Outcome::kAlreadyRecorded);
  CHECK_FALSE(store->GetRun("r2").ok());  // nothing written

  auto taken = store->RecordScheduleTick("a.lua#1", 1002, Queued("r1"));
  REQUIRE(taken.ok());
  CHECK(*taken == Outcome::kRunIdTaken);

  REQUIRE(*store->RecordScheduleTick("a.lua#1", 1002, Queued("r3")) == Outcome::kCreated);
  REQUIRE(*store->RecordScheduleTick("b.lua#nightly", 500, Queued("r4")) == Outcome::kCreated);
  auto last = store->LastScheduleTicks();
  REQUIRE(last.ok());
  REQUIRE(last->size() == 2);
  CHECK((*last)[0].key == "a.lua#1");
  CHECK((*last)[0].tick == 1002);
  CHECK((*last)[0].run_id == "r3");
  CHECK((*last)[1].key == "b.lua#nightly");
  CHECK((*last)[1].tick == 500);
  CHECK(RawDb(dir.Path("keel.db")).Int("SELECT count(*) FROM runs") == 3);
}

TEST_CASE("two stores racing for the same ticks record each once" * doctest::timeout(60)) {
  ScratchDir dir;
  auto a = OpenStore(dir.Path("keel.db"));
  auto b = OpenStore(dir.Path("keel.db"));
  std::atomic<int> created{0};
  auto race = [&](Store* store, const std::string& prefix) {
    for (int tick = 0; tick < 50; ++tick) {
      auto outcome = store->RecordScheduleTick("k", tick, Queued(prefix + std::to_string(tick)));
      REQUIRE(outcome.ok());
      if (*outcome == Outcome::kCreated) ++created;
    }
  };
  std::thread ta(race, a.get(), "a");
  std::thread tb(race, b.get(), "b");
  ta.join();
  tb.join();
  CHECK(created == 50);
  RawDb raw(dir.Path("keel.db"));
  CHECK(raw.Int("SELECT count(*) FROM schedule_ticks") == 50);
  CHECK(raw.Int("SELECT count(*) FROM runs") == 50);
  CHECK(raw.Int("SELECT count(*) FROM runs WHERE id NOT IN (SELECT run_id FROM schedule_ticks)") ==
        0);
}

TEST_CASE("gc leaves queued runs" * doctest::timeout(30)) {
  ScratchDir dir;
  auto store = OpenStore(dir.Path("keel.db"));
  REQUIRE(*store->RecordScheduleTick("a.lua#1", 1000, Queued("r1")) == Outcome::kCreated);
  auto deleted = store->DeleteFinishedBefore(1e12);
  REQUIRE(deleted.ok());
  CHECK(*deleted == 0);
  CHECK(store->GetRun("r1").ok());
}

}  // namespace keel
