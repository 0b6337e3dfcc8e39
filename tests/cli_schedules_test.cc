// Schedules end to end: `keel validate` names the file, line and cron field
// of a bad keel.schedule; `keel schedules` lists every schedule under a
// directory; `keel serve` queues one run per tick of an `every = 2` schedule
// across a kill -9 and a restart (contiguous ticks, none repeated), and two
// servers on one database never queue a tick twice.

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/json.h"
#include "tests/support/sandbox.h"
#include "tests/support/sqlite_db.h"

namespace keel::testing {
namespace {

constexpr int kTimeoutS = 180;

std::string Script(const std::string& schedule) {
  return "local keel = require \"keel\"\n" + schedule +
         "\nreturn keel.workflow \"w\" {\n  params = { topic = \"tea\", n = 1 },\n"
         "  keel.fn \"a\" { run = function(ctx) return ctx.params.n end },\n}\n";
}

size_t Count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// Waits until the server's stderr shows `n` queued runs.
bool WaitForQueued(Subprocess* server, size_t n, std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (Count(server->Stderr(), " queued run ") < n) {
    if (std::chrono::steady_clock::now() > deadline || server->Exited()) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

// The recorded ticks, oldest first, after checking each has its one run
// (queued, or already started by the server's dispatcher).
std::vector<int64_t> CheckedTicks(const std::string& db) {
  SqliteDb raw(db, false);
  auto rows = raw.Query(
      "SELECT t.tick, r.status FROM schedule_ticks t LEFT JOIN runs r ON r.id = t.run_id "
      "ORDER BY t.tick");
  std::vector<int64_t> ticks;
  for (const auto& row : rows) {
    ticks.push_back(std::stoll(row[0]));
    CHECK(!row[1].empty());
  }
  auto runs = raw.Query("SELECT count(*) FROM runs");
  CHECK(std::stoll(runs[0][0]) == static_cast<int64_t>(ticks.size()));
  return ticks;
}

void CheckContiguous(const std::vector<int64_t>& ticks, int64_t every) {
  for (size_t i = 1; i < ticks.size(); ++i) {
    CAPTURE(i);
    CHECK(ticks[i] - ticks[i - 1] == every);
  }
}

}  // namespace

TEST_CASE("validate: a bad schedule fails naming the file, line and field" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  struct Case {
    std::string schedule;
    std::string message;
  };
  const std::vector<Case> cases = {
      {R"(keel.schedule { cron = "60 * * * *" })",
       "schedule 1: cron '60 * * * *': minute 60 out of range 0-59"},
      {R"(keel.schedule { cron = "0 24 * * *" })",
       "schedule 1: cron '0 24 * * *': hour 24 out of range 0-23"},
      {R"(keel.schedule { cron = "0 0 32 * *" })",
       "schedule 1: cron '0 0 32 * *': day-of-month 32 out of range 1-31"},
      {R"(keel.schedule { cron = "0 0 * 13 *" })",
       "schedule 1: cron '0 0 * 13 *': month 13 out of range 1-12"},
      {R"(keel.schedule { cron = "0 0 * smarch *" })",
       "schedule 1: cron '0 0 * smarch *': month: 'smarch' is neither a number nor a month name "
       "(jan-dec)"},
      {R"(keel.schedule { cron = "0 0 * * 8" })",
       "schedule 1: cron '0 0 * * 8': day-of-week 8 out of range 0-7"},
      {R"(keel.schedule { name = "nightly", cron = "0 0 * * caturday" })",
       "schedule 'nightly': cron '0 0 * * caturday': day-of-week: 'caturday' is neither a number "
       "nor a day name (sun-sat)"},
      {R"(keel.schedule { cron = "*/0 * * * *" })",
       "schedule 1: cron '*/0 * * * *': minute: step must be a whole number of at least 1, got "
       "'0'"},
      {R"(keel.schedule { cron = "0 9-5 * * *" })",
       "schedule 1: cron '0 9-5 * * *': hour: range 9-5 runs backwards"},
      {R"(keel.schedule { cron = "0 3 * *" })",
       "schedule 1: cron '0 3 * *': expected 5 fields (minute hour day-of-month month "
       "day-of-week), got 4"},
      {R"(keel.schedule { cron = "0 0 31 feb *" })",
       "schedule 1: cron '0 0 31 feb *': day-of-month 31 never occurs in the months given (they "
       "have at most 29 days), so it would never fire"},
      {R"(keel.schedule { cron = "@daly" })",
       "schedule 1: cron '@daly': unknown macro '@daly' (did you mean '@daily'?); use @hourly, "
       "@daily, @weekly, @monthly or @yearly"},
      {R"(keel.schedule { cron = "@daily", every = 60 })",
       "schedule 1: options 'cron' and 'every' exclude each other; give one"},
      {R"(keel.schedule { params = { n = 2 } })",
       "schedule 1: a schedule needs option 'cron' (\"m h dom mon dow\") or 'every' (seconds)"},
      {R"(keel.schedule { every = 0 })",
       "schedule 1: option 'every' must be a positive whole number of seconds, got 0"},
      {R"(keel.schedule { every = "hourly" })",
       "schedule 1: option 'every' must be a positive whole number of seconds, got a string"},
      {R"(keel.schedule { every = 60, params = "n=2" })",
       "schedule 1: option 'params' must be a table of name = value, got a string"},
      {R"(keel.schedule { evrey = 60 })",
       "schedule 1: unknown option 'evrey' (did you mean 'every'?); a schedule takes cron or "
       "every, params and name"},
      {R"(keel.schedule { every = 60, params = { topik = "x" } })",
       "schedule 1: params: workflow 'w' declares no parameter 'topik' (did you mean 'topic'?); "
       "it declares n, topic"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.schedule);
    const std::string file = box.Write("bad.lua", Script(c.schedule));
    ExitInfo r = box.Keel({"validate", file});
    CHECK(r.exit_code == 2);
    CHECK(r.err == file + ":2: " + c.message + "\n");
    CHECK(r.out.empty());
  }
}

TEST_CASE("validate prints each schedule with its next tick" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  const std::string file =
      box.Write("good.lua", Script("keel.schedule { cron = \"0 3 * * *\", params = { n = 5 } }\n"
                                   "keel.schedule { every = 3600, name = \"hourly\" }"));
  ExitInfo r = box.Keel({"validate", file});
  REQUIRE_MESSAGE(r.exit_code == 0, r.Describe());
  CHECK(r.out.find(file + ": ok: workflow 'w' (1 nodes)\n") == 0);
  CHECK(
      r.out.find("  schedule 1: cron 0 3 * * *, params {\"n\":5,\"topic\":\"tea\"}, next tick ") !=
      std::string::npos);
  CHECK(r.out.find("T03:00:00.000Z\n") != std::string::npos);
  CHECK(r.out.find("  schedule 'hourly': every 3600s, params {\"n\":1,\"topic\":\"tea\"}, next "
                   "tick ") != std::string::npos);
  CHECK(r.out.find(":00:00.000Z\n") != std::string::npos);
}

TEST_CASE("schedules lists every schedule under a directory; bad files do not stop it" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::filesystem::create_directories(box.Path("flows/sub"));
  box.Write("flows/a.lua", Script("keel.schedule { every = 60, params = { n = 3 } }\n"
                                  "keel.schedule { cron = \"@daily\", name = \"nightly\" }"));
  box.Write("flows/sub/b.lua", Script("keel.schedule { cron = \"*/5 * * * *\" }"));
  box.Write("flows/none.lua", Script(""));
  ExitInfo ok = box.Keel({"schedules", "--workflows", box.Path("flows"), "--json"});
  REQUIRE_MESSAGE(ok.exit_code == 0, ok.Describe());
  Json listing = Json::Parse(ok.out);
  REQUIRE(listing["schedules"].Size() == 3);
  CHECK(listing["errors"].Size() == 0);
  Json first = listing["schedules"][0];
  CHECK(first["key"].Str() == "a.lua#1");
  CHECK(first["file"].Str() == "a.lua");
  CHECK(first["every"].Int() == 60);
  CHECK(first["cron"].IsNull());
  CHECK(first["workflow"].Str() == "w");
  CHECK(first["params"]["n"].Int() == 3);
  CHECK(first["params"]["topic"].Str() == "tea");
  CHECK(first["node_count"].Int() == 1);
  CHECK(first["script_sha256"].Str().size() == 64);
  CHECK(first["next_tick"].Int() % 60 == 0);
  CHECK(listing["schedules"][1]["key"].Str() == "a.lua#nightly");
  CHECK(listing["schedules"][1]["cron"].Str() == "@daily");
  CHECK(listing["schedules"][2]["key"].Str() == "sub/b.lua#1");

  box.Write("flows/broken.lua", Script("keel.schedule { cron = \"0 24 * * *\" }"));
  ExitInfo partial = box.Keel({"schedules", "--workflows", box.Path("flows"), "--json"});
  CHECK(partial.exit_code == 2);
  Json with_error = Json::Parse(partial.out);
  CHECK(with_error["schedules"].Size() == 3);
  REQUIRE(with_error["errors"].Size() == 1);
  CHECK(with_error["errors"][0]["file"].Str() == "broken.lua");
  CHECK(with_error["errors"][0]["error"].Str().find(
            "broken.lua:2: schedule 1: cron '0 24 * * *': hour 24 out of range 0-23") !=
        std::string::npos);

  ExitInfo text = box.Keel({"schedules", "--workflows", box.Path("flows")});
  CHECK(text.exit_code == 2);
  CHECK(text.out.find("a.lua#nightly") != std::string::npos);
  CHECK(text.out.find("broken.lua: did not load:") != std::string::npos);
}

TEST_CASE("serve: one queued run per tick across kill -9 and a restart" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::filesystem::create_directories(box.Path("flows/sub"));
  box.Write("flows/tick.lua", Script("keel.schedule { every = 2, params = { n = 7 } }"));
  const std::vector<std::string> serve = {"serve", "--listen", "127.0.0.1:0", "--workflows",
                                          box.Path("flows")};
  auto first = box.StartDb(serve);
  REQUIRE_MESSAGE(WaitForQueued(first.get(), 2, std::chrono::seconds(30)), first->Stderr());
  first->Kill();                                         // SIGKILL
  std::this_thread::sleep_for(std::chrono::seconds(3));  // ticks come due while it is down
  auto second = box.StartDb(serve);
  REQUIRE_MESSAGE(WaitForQueued(second.get(), 3, std::chrono::seconds(30)), second->Stderr());
  second->Kill();

  std::vector<int64_t> ticks = CheckedTicks(box.db());
  CHECK(ticks.size() >= 5);
  CheckContiguous(ticks, 2);
  // The tick runs carry the schedule's params.
  Json runs = box.Runs({});
  REQUIRE(runs.Size() == ticks.size());
  CHECK(box.Show(runs[0]["run_id"].Str())["params"]["n"].Int() == 7);
}

TEST_CASE("serve: two servers on one database queue each tick once" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::filesystem::create_directories(box.Path("flows/sub"));
  box.Write("flows/tick.lua", Script("keel.schedule { every = 2 }"));
  const std::vector<std::string> serve = {"serve", "--listen", "127.0.0.1:0", "--workflows",
                                          box.Path("flows")};
  auto a = box.StartDb(serve);
  auto b = box.StartDb(serve);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(40);
  while (Count(a->Stderr(), " queued run ") + Count(b->Stderr(), " queued run ") < 5 &&
         std::chrono::steady_clock::now() < deadline && !a->Exited() && !b->Exited()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  a->Kill();
  b->Kill();
  std::vector<int64_t> ticks = CheckedTicks(box.db());
  CHECK(ticks.size() >= 5);
  CheckContiguous(ticks, 2);
  // Each tick was queued by one of them: their logs add up to the ticks.
  CHECK(Count(a->Stderr(), " queued run ") + Count(b->Stderr(), " queued run ") == ticks.size());
}

}  // namespace keel::testing
