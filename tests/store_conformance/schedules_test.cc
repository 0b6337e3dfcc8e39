// Schedule ticks: a tick and its queued run are recorded together or not at
// all, each tick once across racing stores, and the last tick per schedule.

#include <atomic>
#include <set>
#include <thread>

#include "tests/store_conformance/conformance.h"

namespace keel::conformance {
namespace {

KEEL_CONFORMANCE_SUITE;

using Outcome = Store::TickOutcome;

TEST_CASE("a tick creates its queued run once; a second record is refused" *
          doctest::timeout(60)) {
  KEEL_FRESH_BACKEND(db);
  auto store = db->Open();
  CHECK(Must(store->LastScheduleTicks()).empty());
  RunRecord queued = QueuedRun("r1", 100);
  queued.modules = {ScriptModule{"util", "/tmp/util.lua", "aa", "return {}"}};
  CHECK(Must(store->RecordScheduleTick("a.lua#1", 1000, queued)) == Outcome::kCreated);
  auto other = db->OpenSecond();
  RunRecord run = RunOf(*other, "r1");
  CHECK(run.status == RunStatus::kQueued);
  CHECK(run.owner.pid == 0);
  CHECK(run.epoch == 1);
  CHECK(run.script_text == "return keel.workflow 'wf' {}");
  CHECK(Must(other->GetNodes("r1")).empty());
  auto versions = Must(other->GetScriptVersions("r1"));
  REQUIRE(versions.size() == 1);
  CHECK(versions[0].modules.size() == 1);

  CHECK(Must(other->RecordScheduleTick("a.lua#1", 1000, QueuedRun("r2"))) ==
        Outcome::kAlreadyRecorded);
  CHECK_FALSE(store->GetRun("r2").ok());  // nothing written
  CHECK(Must(store->RecordScheduleTick("a.lua#1", 1002, QueuedRun("r1"))) ==
        Outcome::kRunIdTaken);
  CHECK(Must(store->RecordScheduleTick("a.lua#1", 1002, QueuedRun("r3"))) == Outcome::kCreated);
  CHECK(Must(store->RecordScheduleTick("b.lua#nightly", 500, QueuedRun("r4"))) ==
        Outcome::kCreated);
  // An older tick recorded late does not hide the last one.
  CHECK(Must(store->RecordScheduleTick("a.lua#1", 999, QueuedRun("r5"))) == Outcome::kCreated);
  auto last = Must(other->LastScheduleTicks());
  std::sort(last.begin(), last.end(),
            [](const auto& x, const auto& y) { return x.key < y.key; });
  REQUIRE(last.size() == 2);
  CHECK(last[0].key == "a.lua#1");
  CHECK(last[0].tick == 1002);
  CHECK(last[0].run_id == "r3");
  CHECK(last[1].key == "b.lua#nightly");
  CHECK(last[1].tick == 500);
  CHECK(last[1].run_id == "r4");
  CHECK(Must(store->ListRuns(AllRuns())).size() == 4);
}

TEST_CASE("two stores racing for the same ticks record each once" * doctest::timeout(180)) {
  KEEL_FRESH_BACKEND(db);
  auto a = db->Open();
  auto b = db->OpenSecond();
  constexpr int kTicks = 40;
  std::atomic<int> created{0}, errors{0};
  auto race = [&](Store* store, const std::string& prefix) {
    for (int tick = 0; tick < kTicks; ++tick) {
      auto outcome = store->RecordScheduleTick("k", tick, QueuedRun(prefix + std::to_string(tick)));
      if (!outcome.ok()) {
        ++errors;
      } else if (*outcome == Outcome::kCreated) {
        ++created;
      } else if (*outcome != Outcome::kAlreadyRecorded) {
        ++errors;
      }
    }
  };
  std::thread ta(race, a.get(), "a");
  std::thread tb(race, b.get(), "b");
  ta.join();
  tb.join();
  CHECK(errors == 0);
  CHECK(created == kTicks);
  // Every tick's run, and no run without its tick.
  auto runs = Must(a->ListRuns(AllRuns()));
  CHECK(runs.size() == static_cast<size_t>(kTicks));
  std::set<std::string> ticks;
  for (const RunListing& r : runs) ticks.insert(r.run.id.substr(1));
  CHECK(ticks.size() == static_cast<size_t>(kTicks));
  auto last = Must(b->LastScheduleTicks());
  REQUIRE(last.size() == 1);
  CHECK(last[0].tick == kTicks - 1);
}

}  // namespace
}  // namespace keel::conformance
