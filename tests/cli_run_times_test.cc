// Times `keel` shows for a run, through the real binary: a run resumed after
// a stop shows its active time (without the stop) and its elapsed time, in
// `keel runs` and `keel show` alike; run ids, STARTED and progress stamps
// are all in the local time zone.

#include <doctest/doctest.h>

#include <chrono>
#include <regex>
#include <string>
#include <thread>

#include "tests/support/files.h"
#include "tests/support/json.h"
#include "tests/support/keel_cli.h"
#include "tests/support/sandbox.h"
#include "tests/support/subprocess.h"

namespace keel::testing {
namespace {

constexpr int kTimeoutS = 120;
constexpr auto kWait = std::chrono::seconds(30);

// `first` succeeds; `wait` waits (without blocking) until file `go` exists.
std::string Blocked(const std::string& go) {
  return R"lua(local keel = require "keel"
return keel.workflow "blocked" {
  keel.fn "first" { run = function() return 1 end },
  keel.fn "wait" { after = { "first" }, run = function()
    for i = 1, 6000 do
      local f = io.open(")lua" +
         go + R"lua(", "r")
      if f then f:close() return "released" end
      keel.sleep(0.01)
    end
    error("never released")
  end },
}
)lua";
}

TEST_CASE("a resumed run shows active and elapsed time; the stop counts only in elapsed" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string go = box.Path("go");
  std::string wf = box.Write("blocked.lua", Blocked(go));
  auto run = box.StartDb({"run", wf});
  REQUIRE(run->WaitForStderr("wait started", kWait));
  std::string id = RunIdFromStderr(run->Stderr());
  REQUIRE(!id.empty());
  run->Kill();

  std::this_thread::sleep_for(std::chrono::milliseconds(2500));  // the stop
  WriteFile(go, "");
  ExitInfo resumed = box.KeelDb({"resume", id});
  INFO(resumed.Describe());
  REQUIRE(resumed.exit_code == 0);
  // The resume's own time on stdout; the run's, as `keel runs` has them, on stderr.
  CHECK(std::regex_search(
      resumed.err, std::regex("\nrun " + id + R"( in all: [0-9.]+s active, [0-9.]+s elapsed\n)")));

  Json show = box.Show(id);
  INFO(show.Dump());
  double elapsed = show["duration_s"].Num();
  double active = show["active_s"].Num();
  CHECK(elapsed >= 2.5);
  CHECK(active < elapsed - 2);
  CHECK(active > 0);
  Json listed = box.Runs()[0];
  CHECK(listed["duration_s"].Num() == doctest::Approx(elapsed));
  CHECK(listed["active_s"].Num() == doctest::Approx(active));

  ExitInfo text = box.KeelDb({"show", id});
  INFO(text.Describe());
  CHECK(std::regex_search(text.out,
                          std::regex(R"(\nduration  [0-9.]+s active, [0-9.]+s elapsed\n)")));
  ExitInfo table = box.KeelDb({"runs"});
  INFO(table.Describe());
  CHECK(std::regex_search(table.out, std::regex(R"(STARTED +ACTIVE +ELAPSED +NODES)")));
}

// `keel <args> --db DB` with the time zone set to UTC+9 (a POSIX TZ string,
// so no zone database is needed).
ExitInfo InTokyoTime(const Sandbox& box, std::vector<std::string> args) {
  args.insert(args.end(), {"--db", box.db()});
  Subprocess keel(
      KEEL_BIN,
      {.args = args, .cwd = box.dir(), .env = {{"TZ", "JST-9"}, {"KEEL_DB", std::nullopt}}});
  return keel.Wait(std::chrono::seconds(60));
}

TEST_CASE("run ids, STARTED and progress stamps agree on the time zone" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("one.lua", R"lua(local keel = require "keel"
return keel.workflow "one" { keel.fn "a" { run = function() return 1 end } }
)lua");
  ExitInfo r = InTokyoTime(box, {"run", wf});
  INFO(r.Describe());
  REQUIRE(r.exit_code == 0);
  std::string id = RunIdFromStderr(r.err);
  std::smatch parts;
  REQUIRE(
      std::regex_match(id, parts, std::regex(R"((\d\d)(\d\d)(\d\d)-(\d\d)(\d\d)\d\d-[0-9a-f]+)")));
  std::string hour = parts[4].str(), minute = parts[5].str();
  std::smatch stamp;
  REQUIRE(std::regex_search(r.err, stamp, std::regex(R"((\d\d):(\d\d):\d\d\.\d{3} a started)")));
  CHECK(stamp[1].str() == hour);

  ExitInfo runs = InTokyoTime(box, {"runs"});
  INFO(runs.Describe());
  REQUIRE(runs.exit_code == 0);
  std::string started = "20" + parts[1].str() + "-" + parts[2].str() + "-" + parts[3].str() + " " +
                        hour + ":" + minute + ":";
  CHECK(runs.out.find(started) != std::string::npos);
}

}  // namespace
}  // namespace keel::testing
