// service/scheduler with a fake clock and a real SQLite store: a schedule
// seen for the first time starts with its next tick, the timer wakes it at
// each tick, missed ticks inside the catch-up window start once each after a
// restart and older ones are skipped with a log line, and two schedulers on
// one database never start a tick twice.

#include "service/scheduler.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "engine/fake_clock.h"
#include "engine/mutex.h"
#include "service/tick_plan.h"
#include "tests/sqlite_test_util.h"

namespace keel::service {
namespace {

// A filter by status (any when nullopt) and limit, the other fields left as they are.
RunFilter FilterOf(std::optional<RunStatus> status, int limit) {
  RunFilter filter;
  filter.status = status;
  filter.limit = limit;
  return filter;
}

using keel::testing::OpenStore;
using keel::testing::RawDb;
using keel::testing::ScratchDir;

constexpr double kWall = 1699999800;  // 2023-11-14T22:10:00Z: a multiple of 2, 10 and 600
constexpr double kWait = 20;          // real seconds a test waits for a pass at most

ScheduleListing Every(const std::string& key, int64_t every) {
  ScheduleListing s;
  s.key = key;
  s.file = key.substr(0, key.find('#'));
  s.index = 1;
  s.every = every;
  s.workflow = "report";
  s.params_json = R"({"topic":"tea"})";
  s.script_path = "/w/" + s.file;
  s.script_sha256 = "abc";
  s.script_text = "return keel.workflow 'report' {}";
  s.node_count = 3;
  return s;
}

// A log that tests can read while the scheduler writes it.
struct Log {
  Mutex mu;
  std::vector<std::string> lines GUARDED_BY(mu);
  std::string Joined() {
    MutexLock lock(&mu);
    std::string all;
    for (const std::string& l : lines) all += l + "\n";
    return all;
  }
};

SchedulerOptions Options(std::vector<ScheduleListing> schedules, Log* log) {
  SchedulerOptions options;
  options.workflows = "/w";
  // Only ticks wake the scheduler in these tests: no file polling.
  options.poll_s = 1e9;
  options.rediscover_s = 1e9;
  options.discover = [schedules] {
    ScheduleListingSet set;
    set.schedules = schedules;
    return Result<ScheduleListingSet>(set);
  };
  options.stamp = [] { return std::string("same"); };
  options.log = [log](const std::string& line) {
    MutexLock lock(&log->mu);
    log->lines.push_back(line);
  };
  return options;
}

// Moves the clock to the scheduler's next timer and waits for the pass it starts.
void NextTick(FakeClock* clock, Scheduler* scheduler) {
  REQUIRE(clock->RunNext());
  REQUIRE(scheduler->WaitForPass(clock->Now(), kWait));
}

std::vector<int64_t> Ticks(const std::string& db, const std::string& key) {
  std::vector<int64_t> ticks;
  RawDb raw(db);
  int64_t n = raw.Int("SELECT count(*) FROM schedule_ticks WHERE key = '" + key + "'");
  for (int64_t i = 0; i < n; ++i) {
    ticks.push_back(raw.Int("SELECT tick FROM schedule_ticks WHERE key = '" + key +
                            "' ORDER BY tick LIMIT 1 OFFSET " + std::to_string(i)));
  }
  return ticks;
}

}  // namespace

TEST_CASE("plans: first sight, catch-up window, cap" * doctest::timeout(10)) {
  auto every = ScheduleRule::Every(600);
  REQUIRE(every.ok());
  const int64_t t = 1699999800;
  TickPlan none = PlanTicks(*every, t, t + 599, 3600, 100);
  CHECK(none.start.empty());
  CHECK(none.skipped == 0);
  TickPlan one = PlanTicks(*every, t, t + 600, 3600, 100);
  CHECK(one.start == std::vector<int64_t>{t + 600});
  TickPlan late = PlanTicks(*every, t - 7200, t, 3600, 100);
  CHECK(late.start.size() == 7);
  CHECK(late.start.front() == t - 3600);
  CHECK(late.start.back() == t);
  CHECK(late.skipped == 5);
  CHECK(late.first_skipped == t - 6600);
  CHECK(late.last_skipped == t - 4200);
  TickPlan capped = PlanTicks(*every, t - 3000, t, 3600, 2);
  CHECK(capped.start == std::vector<int64_t>{t - 600, t});
  CHECK(capped.skipped == 3);
  CHECK(capped.first_skipped == t - 2400);
  CHECK(capped.last_skipped == t - 1200);
  auto cron = ScheduleRule::Cron("*/15 * * * *");
  REQUIRE(cron.ok());
  TickPlan cron_late = PlanTicks(*cron, t - 7200, t, 3600, 100);
  CHECK(cron_late.start.size() == 4);
  CHECK(cron_late.skipped == 4);
}

TEST_CASE("a new schedule starts with its next tick, woken by the timer" * doctest::timeout(60)) {
  ScratchDir dir;
  const std::string db = dir.Path("keel.db");
  auto store = OpenStore(db);
  FakeClock clock(1000, kWall);
  Log log;
  Scheduler scheduler(Options({Every("a.lua#1", 10)}, &log), store.get(), &clock);
  scheduler.Start();
  REQUIRE(scheduler.WaitForPass(clock.Now(), kWait));
  CHECK(Ticks(db, "a.lua#1").empty());  // no history on first sight
  CHECK(clock.pending() == 1);

  NextTick(&clock, &scheduler);
  CHECK(clock.WallNow() == kWall + 10);  // woken exactly at the tick
  CHECK(Ticks(db, "a.lua#1") == std::vector<int64_t>{1699999810});
  NextTick(&clock, &scheduler);
  CHECK(Ticks(db, "a.lua#1") == std::vector<int64_t>{1699999810, 1699999820});
  scheduler.Stop();

  auto runs = store->ListRuns(FilterOf(RunStatus::kQueued, 0));
  REQUIRE(runs.ok());
  REQUIRE(runs->size() == 2);
  auto run = store->GetRun(runs->front().run.id);
  REQUIRE(run.ok());
  CHECK(run->status == RunStatus::kQueued);
  CHECK(run->workflow == "report");
  CHECK(run->params_json == R"({"topic":"tea"})");
  CHECK(run->script_text == "return keel.workflow 'report' {}");
  CHECK(run->script_path == "/w/a.lua");
  CHECK(run->node_count == 3);
  CHECK(run->owner.pid == 0);
  CHECK(store->GetNodes(run->id)->empty());
  CHECK(log.Joined().find("schedule a.lua#1: tick 2023-11-14T22:10:10.000Z queued run") !=
        std::string::npos);
}

TEST_CASE("a restart starts each missed tick once, contiguous with the last" *
          doctest::timeout(60)) {
  ScratchDir dir;
  const std::string db = dir.Path("keel.db");
  FakeClock clock(1000, kWall);
  Log log;
  {
    auto store = OpenStore(db);
    Scheduler first(Options({Every("a.lua#1", 2)}, &log), store.get(), &clock);
    first.Start();
    REQUIRE(first.WaitForPass(clock.Now(), kWait));
    NextTick(&clock, &first);
    NextTick(&clock, &first);
    first.Stop();
  }
  clock.Advance(6.5);  // down for three ticks
  auto store = OpenStore(db);
  Scheduler second(Options({Every("a.lua#1", 2)}, &log), store.get(), &clock);
  second.Start();
  REQUIRE(second.WaitForPass(clock.Now(), kWait));
  NextTick(&clock, &second);
  second.Stop();
  const int64_t t = 1699999800;
  CHECK(Ticks(db, "a.lua#1") == std::vector<int64_t>{t + 2, t + 4, t + 6, t + 8, t + 10, t + 12});
  CHECK(RawDb(db).Int("SELECT count(*) FROM runs WHERE status = 'queued'") == 6);
  CHECK(RawDb(db).Int("SELECT count(DISTINCT run_id) FROM schedule_ticks") == 6);
}

TEST_CASE("ticks older than the catch-up window are skipped with a log line" *
          doctest::timeout(60)) {
  ScratchDir dir;
  const std::string db = dir.Path("keel.db");
  auto store = OpenStore(db);
  const int64_t t = 1699999800;
  RunRecord old = keel::testing::MakeRun("old-run", kWall - 7200);
  old.status = RunStatus::kQueued;
  REQUIRE(*store->RecordScheduleTick("a.lua#1", t - 7200, old) == Store::TickOutcome::kCreated);
  FakeClock clock(1000, kWall);
  Log log;
  Scheduler scheduler(Options({Every("a.lua#1", 600)}, &log), store.get(), &clock);
  scheduler.Start();
  REQUIRE(scheduler.WaitForPass(clock.Now(), kWait));
  scheduler.Stop();
  std::vector<int64_t> expected = {t - 7200};
  for (int64_t tick = t - 3600; tick <= t; tick += 600) expected.push_back(tick);
  CHECK(Ticks(db, "a.lua#1") == expected);
  CHECK(log.Joined().find("schedule a.lua#1: skipped 5 missed ticks from "
                          "2023-11-14T20:20:00.000Z to 2023-11-14T21:00:00.000Z (older than the "
                          "catch-up window of 1h") != std::string::npos);
}

TEST_CASE("two schedulers on one database start each tick once" * doctest::timeout(60)) {
  ScratchDir dir;
  const std::string db = dir.Path("keel.db");
  auto store_a = OpenStore(db);
  auto store_b = OpenStore(db);
  FakeClock clock(1000, kWall);
  Log log;
  auto schedules = std::vector<ScheduleListing>{Every("a.lua#1", 2), Every("b.lua#fast", 2)};
  Scheduler a(Options(schedules, &log), store_a.get(), &clock);
  Scheduler b(Options(schedules, &log), store_b.get(), &clock);
  a.Start();
  b.Start();
  REQUIRE(a.WaitForPass(clock.Now(), kWait));
  REQUIRE(b.WaitForPass(clock.Now(), kWait));
  for (int i = 0; i < 5; ++i) {
    // Both timers fall due together; each scheduler wakes for its own.
    clock.Advance(2);
    REQUIRE(a.WaitForPass(clock.Now(), kWait));
    REQUIRE(b.WaitForPass(clock.Now(), kWait));
  }
  a.Stop();
  b.Stop();
  const int64_t t = 1699999800;
  std::vector<int64_t> expected = {t + 2, t + 4, t + 6, t + 8, t + 10};
  CHECK(Ticks(db, "a.lua#1") == expected);
  CHECK(Ticks(db, "b.lua#fast") == expected);
  CHECK(RawDb(db).Int("SELECT count(*) FROM runs") == 10);
}

TEST_CASE("discovery failures keep the known schedules; file errors are logged once" *
          doctest::timeout(60)) {
  ScratchDir dir;
  auto store = OpenStore(dir.Path("keel.db"));
  FakeClock clock(1000, kWall);
  Log log;
  SchedulerOptions options = Options({}, &log);
  Mutex mu;
  int calls = 0;
  options.rediscover_s = 1;
  options.discover = [&]() -> Result<ScheduleListingSet> {
    MutexLock lock(&mu);
    ++calls;
    if (calls == 2) return Status::Error(ErrorKind::kTimeout, "too slow");
    ScheduleListingSet set;
    set.schedules.push_back(Every("a.lua#1", 10));
    set.errors.push_back({"bad.lua", "bad.lua:1: boom"});
    return set;
  };
  Scheduler scheduler(options, store.get(), &clock);
  scheduler.Start();
  REQUIRE(scheduler.WaitForPass(clock.Now(), kWait));
  NextTick(&clock, &scheduler);  // the poll: discovery fails
  NextTick(&clock, &scheduler);
  NextTick(&clock, &scheduler);
  scheduler.Stop();
  std::string all = log.Joined();
  CHECK(all.find("discovering schedules failed (keeping the 1 known): too slow") !=
        std::string::npos);
  CHECK(all.find("not loaded: bad.lua: bad.lua:1: boom") == all.rfind("not loaded: bad.lua"));
}

}  // namespace keel::service
