// Crash and resume end to end: kill -9 a real `keel run`, then `keel resume`
// it; resume refusals (owner alive, node removed); resume after a script fix.

#include <doctest/doctest.h>
#include <signal.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <regex>
#include <string>
#include <thread>

#include "tests/support/files.h"
#include "tests/support/json.h"
#include "tests/support/keel_cli.h"
#include "tests/support/sandbox.h"

namespace keel::testing {
namespace {

constexpr int kTimeoutS = 120;
constexpr auto kWait = std::chrono::seconds(30);

// Lua helpers every workflow here starts with: log(name) appends a line to
// the side-effect log; wait_for(path) waits (without blocking) until it exists.
std::string Prelude(const Sandbox& box) {
  return R"lua(local keel = require "keel"
local LOG, GO = ")lua" +
         box.Path("log") + R"lua(", ")lua" + box.Path("go") + R"lua("
local function log(name)
  local f = assert(io.open(LOG, "a"))
  f:write(name, "\n")
  f:close()
end
local function wait_for(path)
  for i = 1, 6000 do
    local f = io.open(path, "r")
    if f then f:close() return end
    keel.sleep(0.01)
  end
  error("timed out waiting for " .. path)
end
)lua";
}

std::map<std::string, int> LogCounts(const Sandbox& box) {
  return CountLines(ReadFile(box.Path("log")).value_or(""));
}

std::string StatusOf(const Json& show, const std::string& node) {
  return NodeEntry(show["nodes"], node)["status"].Str();
}

TEST_CASE("kill -9 during a node, then resume: finished nodes are not redone" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("crashy.lua", Prelude(box) + R"lua(
return keel.workflow "crashy" {
  keel.fn "a" { run = function() log("a") return 1 end },
  keel.fn "b" { after = { "a" }, run = function(ctx) log("b") wait_for(GO) return ctx.deps.a + 1 end },
  keel.fn "c" { after = { "b" }, run = function(ctx) log("c") return ctx.deps.b * 10 end },
  keel.fn "side" { run = function() log("side") return "side" end },
}
)lua");

  std::unique_ptr<Subprocess> run = box.StartDb({"run", wf});
  REQUIRE(run->WaitForStderr(" started: ", kWait));
  std::string id = RunIdFromStderr(run->Stderr());
  REQUIRE(WaitUntil([&] { return LogCounts(box)["b"] == 1; }, kWait));
  // Kill only once a's and side's successes are durable (commits are asynchronous).
  bool durable = WaitUntil(
      [&] {
        Json show = box.Show(id);
        return StatusOf(show, "a") == "succeeded" && StatusOf(show, "side") == "succeeded";
      },
      kWait);
  REQUIRE(durable);
  ExitInfo killed = run->Kill();
  INFO(killed.Describe());
  REQUIRE(killed.signal == SIGKILL);

  Json show = box.Show(id);
  CHECK((show["status"].Str() == "running" || show["status"].Str() == "interrupted"));
  CHECK(StatusOf(show, "a") == "succeeded");
  CHECK(StatusOf(show, "b") != "succeeded");
  CHECK(StatusOf(show, "c") != "succeeded");
  Json runs = box.Runs();
  REQUIRE(runs.Size() == 1);
  CHECK(runs[0]["status"].Str() == "interrupted");

  WriteFile(box.Path("go"), "");
  ExitInfo resumed = box.KeelDb({"resume", id, "--json"});
  INFO(resumed.Describe());
  REQUIRE(resumed.exit_code == 0);
  CHECK(resumed.err.find("run " + id + " resumed: 2 of 4 nodes kept") != std::string::npos);
  CHECK(resumed.err.find("changed since the run started") == std::string::npos);
  Json out = Json::Parse(resumed.out);
  CHECK(out["run_id"].Str() == id);
  CHECK(out["status"].Str() == "succeeded");
  CHECK(out["outputs"]["c"].Int() == 20);
  CHECK(out["outputs"]["side"].Str() == "side");

  std::map<std::string, int> counts = LogCounts(box);
  CHECK(counts["a"] == 1);
  CHECK(counts["side"] == 1);
  CHECK(counts["b"] >= 1);
  CHECK(counts["b"] <= 2);
  CHECK(counts["c"] == 1);

  Json after = box.Show(id);
  CHECK(after["status"].Str() == "succeeded");
  for (const char* node : {"a", "b", "c", "side"}) {
    CAPTURE(node);
    CHECK(StatusOf(after, node) == "succeeded");
  }
  CHECK(NodeEntry(after["nodes"], "b")["output"].Int() == 2);
  CHECK(box.Runs()[0]["status"].Str() == "succeeded");

  ExitInfo again = box.KeelDb({"resume", id.substr(0, 6)});
  INFO(again.Describe());
  CHECK(again.exit_code == 0);
  CHECK(again.err.find("run " + id + " already succeeded") != std::string::npos);
  CHECK(LogCounts(box) == counts);

  // With --json, a finished run still prints the object `run --json` prints.
  ExitInfo again_json = box.KeelDb({"resume", id, "--json"});
  INFO(again_json.Describe());
  CHECK(again_json.exit_code == 0);
  CHECK(again_json.err.find("run " + id + " already succeeded") != std::string::npos);
  Json finished = Json::Parse(again_json.out);
  CHECK(finished["run_id"].Str() == id);
  CHECK(finished["workflow"].Str() == "crashy");
  CHECK(finished["status"].Str() == "succeeded");
  CHECK(finished["outputs"]["c"].Int() == 20);
  CHECK(finished["outputs"]["side"].Str() == "side");
  CHECK(finished["outputs"].Size() == 2);
  CHECK(finished["nodes"]["b"]["status"].Str() == "succeeded");
  CHECK(finished["nodes"]["b"]["attempts"].Int() >= 1);
  CHECK(finished["error"].IsNull());
  CHECK(finished["usage"]["calls"].Int() == 0);
  CHECK(LogCounts(box) == counts);
}

TEST_CASE("kill -9 after a join = \"any\" went ahead: resume does not run the loser again" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  // race's join is satisfied by fast; slow (the loser) and tail wait for the
  // go-file, so the kill finds race kept and tail in flight.
  std::string wf = box.Write("race.lua", Prelude(box) + R"lua(
return keel.workflow "race" {
  keel.fn "fast" { run = function() log("fast") return "fast" end },
  keel.fn "slow" { run = function() log("slow") wait_for(GO) return "slow" end },
  keel.fn "race" { after = { "fast", "slow" }, join = "any", run = function(ctx)
    log("race") return ctx.deps.fast end },
  keel.fn "tail" { after = { "race" }, run = function(ctx)
    log("tail") wait_for(GO) return ctx.deps.race .. "!" end },
}
)lua");
  std::unique_ptr<Subprocess> run = box.StartDb({"run", wf});
  REQUIRE(run->WaitForStderr(" started: ", kWait));
  std::string id = RunIdFromStderr(run->Stderr());
  REQUIRE(WaitUntil([&] { return LogCounts(box)["tail"] == 1; }, kWait));
  REQUIRE(WaitUntil(
      [&] {
        Json show = box.Show(id);
        return StatusOf(show, "race") == "succeeded" && StatusOf(show, "tail") == "running";
      },
      kWait));
  ExitInfo killed = run->Kill();
  INFO(killed.Describe());
  REQUIRE(killed.signal == SIGKILL);

  // slow may or may not have started before race won; either way, never again.
  const int slow_before = LogCounts(box)["slow"];
  CHECK(slow_before <= 1);

  // The dead run has nothing running: its in-flight node reads interrupted.
  Json dead = box.Show(id);
  CHECK(dead["status"].Str() == "interrupted");
  CHECK(StatusOf(dead, "tail") == "interrupted");
  ExitInfo text = box.KeelDb({"show", id});
  INFO(text.Describe());
  CHECK(std::regex_search(text.out, std::regex("\ntail +interrupted ")));
  CHECK(text.out.find("running") == std::string::npos);

  WriteFile(box.Path("go"), "");
  ExitInfo resumed = box.KeelDb({"resume", id, "--json"});
  INFO(resumed.Describe());
  REQUIRE(resumed.exit_code == 0);
  Json out = Json::Parse(resumed.out);
  CHECK(out["status"].Str() == "succeeded");
  CHECK(out["outputs"]["tail"].Str() == "fast!");
  CHECK(out["nodes"]["slow"]["status"].Str() == "cancelled");
  std::map<std::string, int> counts = LogCounts(box);
  CHECK(counts["slow"] == slow_before);
  CHECK(counts["race"] == 1);
  CHECK(counts["tail"] == 2);

  Json after = box.Show(id);
  CHECK(after["status"].Str() == "succeeded");
  CHECK(StatusOf(after, "slow") == "cancelled");
  CHECK(NodeEntry(after["nodes"], "slow")["error"].Str().starts_with("not needed: "));
}

TEST_CASE("SIGTERM records run_interrupted and the status interrupted" *
          doctest::timeout(kTimeoutS)) {
  for (int signal_number : {SIGTERM, SIGINT}) {
    CAPTURE(signal_number);
    Sandbox box(KEEL_BIN);
    std::string id = [&] {
      std::string wf = box.Write("blocked.lua", Prelude(box) + R"lua(
return keel.workflow "blocked" {
  keel.fn "first" { run = function() log("first") return 1 end },
  keel.fn "wait" { after = { "first" }, run = function() log("wait") wait_for(GO) return "done" end },
}
)lua");
      std::unique_ptr<Subprocess> run = box.StartDb({"run", wf});
      REQUIRE(run->WaitForStderr(" started: ", kWait));
      std::string run_id = RunIdFromStderr(run->Stderr());
      REQUIRE(WaitUntil([&] { return LogCounts(box)["wait"] == 1; }, kWait));
      REQUIRE(kill(run->pid(), signal_number) == 0);
      ExitInfo stopped = run->Wait(kWait);
      INFO(stopped.Describe());
      CHECK(stopped.signal == signal_number);  // still dies of the signal
      CHECK(stopped.err.find("interrupted; resume with: keel resume " + run_id) !=
            std::string::npos);
      return run_id;
    }();

    Json show = box.Show(id, /*events=*/true);
    CHECK(show["status"].Str() == "interrupted");
    CHECK(show["duration_s"].IsNull());
    CHECK(show["error"].Str() ==
          std::string("interrupted by ") + (signal_number == SIGTERM ? "SIGTERM" : "SIGINT"));
    CHECK(StatusOf(show, "wait") == "interrupted");
    bool recorded = false;
    for (size_t i = 0; i < show["events"].Size(); ++i) {
      Json e = show["events"][i];
      if (e["kind"].Str() != "run_interrupted") continue;
      recorded = true;
      CHECK(e["data"]["signal"].Str() == (signal_number == SIGTERM ? "SIGTERM" : "SIGINT"));
      CHECK(e["data"]["number"].Int() == signal_number);
    }
    CHECK(recorded);
    Json listed = box.Runs({"--status", "interrupted"});
    REQUIRE(listed.Size() == 1);
    CHECK(listed[0]["run_id"].Str() == id);
    ExitInfo gc = box.KeelDb({"gc", "--older-than", "1s"}, kWait);
    CHECK(gc.out.find("deleted 0 runs") != std::string::npos);

    WriteFile(box.Path("go"), "");
    ExitInfo resumed = box.KeelDb({"resume", id, "--json"});
    INFO(resumed.Describe());
    CHECK(resumed.exit_code == 0);
    CHECK(Json::Parse(resumed.out)["status"].Str() == "succeeded");
    CHECK(LogCounts(box)["first"] == 1);
    CHECK(box.Show(id)["status"].Str() == "succeeded");
  }
}

TEST_CASE("resume is refused while the run's owner is alive" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("blocked.lua", Prelude(box) + R"lua(
return keel.workflow "blocked" {
  keel.fn "wait" { run = function() log("wait") wait_for(GO) return "done" end },
}
)lua");
  std::unique_ptr<Subprocess> owner = box.StartDb({"run", wf});
  REQUIRE(owner->WaitForStderr(" started: ", kWait));
  std::string id = RunIdFromStderr(owner->Stderr());
  REQUIRE(WaitUntil([&] { return LogCounts(box)["wait"] == 1; }, kWait));

  ExitInfo refused = box.KeelDb({"resume", id});
  INFO(refused.Describe());
  CHECK(refused.exit_code == 2);
  CHECK(refused.err.find(std::to_string(owner->pid())) != std::string::npos);
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  CHECK(refused.err.find(host) != std::string::npos);
  CHECK(RunIdFromStderr(refused.err).empty());

  WriteFile(box.Path("go"), "");
  ExitInfo finished = owner->Wait(kWait);
  INFO(finished.Describe());
  CHECK(finished.exit_code == 0);
  Json show = box.Show(id);
  CHECK(show["status"].Str() == "succeeded");
  CHECK(StatusOf(show, "wait") == "succeeded");
  CHECK(LogCounts(box)["wait"] == 1);

  ExitInfo unknown = box.KeelDb({"resume", "no-such-run"});
  INFO(unknown.Describe());
  CHECK(unknown.exit_code == 2);
}

// Starts a run of a one-node workflow that waits for the go-file, waits
// until the node has started, kills the run with SIGKILL and returns its id.
std::string StartAndKill(const Sandbox& box) {
  std::string wf = box.Write("blocked.lua", Prelude(box) + R"lua(
return keel.workflow "blocked" {
  keel.fn "first" { run = function() log("first") return 1 end },
  keel.fn "wait" { after = { "first" }, run = function() log("wait") wait_for(GO) return "done" end },
}
)lua");
  std::unique_ptr<Subprocess> run = box.StartDb({"run", wf});
  REQUIRE(run->WaitForStderr(" started: ", kWait));
  std::string id = RunIdFromStderr(run->Stderr());
  REQUIRE(WaitUntil([&] { return LogCounts(box)["wait"] == 1; }, kWait));
  REQUIRE(WaitUntil([&] { return StatusOf(box.Show(id), "first") == "succeeded"; }, kWait));
  REQUIRE(run->Kill().signal == SIGKILL);
  return id;
}

TEST_CASE("two resumes of one dead run at once: exactly one takes it over" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string id = StartAndKill(box);
  std::unique_ptr<Subprocess> one = box.StartDb({"resume", id});
  std::unique_ptr<Subprocess> two = box.StartDb({"resume", id});
  // Each either announces the resume or is refused; wait until both decided.
  auto decided = [](Subprocess& p) {
    return p.Exited() || p.Stderr().find(" resumed: ") != std::string::npos;
  };
  REQUIRE(WaitUntil([&] { return decided(*one) && decided(*two); }, kWait));
  REQUIRE(WaitUntil([&] { return LogCounts(box)["wait"] >= 2; }, kWait));
  WriteFile(box.Path("go"), "");
  ExitInfo a = one->Wait(kWait);
  ExitInfo b = two->Wait(kWait);
  INFO(a.Describe());
  INFO(b.Describe());
  CHECK(((a.exit_code == 0 && b.exit_code == 2) || (a.exit_code == 2 && b.exit_code == 0)));
  const ExitInfo& loser = a.exit_code == 2 ? a : b;
  const Subprocess& winner = a.exit_code == 2 ? *two : *one;
  CHECK(loser.err.find(std::to_string(winner.pid())) != std::string::npos);
  CHECK(LogCounts(box) == std::map<std::string, int>{{"first", 1}, {"wait", 2}});
  CHECK(box.Show(id)["status"].Str() == "succeeded");
}

TEST_CASE("an interrupted run survives gc and can still be resumed" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string id = StartAndKill(box);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  ExitInfo gc = box.KeelDb({"gc", "--older-than", "1s"});
  INFO(gc.Describe());
  CHECK(gc.exit_code == 0);
  CHECK(gc.out == "deleted 0 runs\n");
  WriteFile(box.Path("go"), "");
  ExitInfo resumed = box.KeelDb({"resume", id});
  INFO(resumed.Describe());
  CHECK(resumed.exit_code == 0);
  CHECK(LogCounts(box)["first"] == 1);
}

const char kFailingX[] = R"lua(
return keel.workflow "fixme" {
  keel.fn "a" { run = function() log("a") return "A" end },
  keel.fn "x" { after = { "a" }, run = function() log("x") error("not yet") end },
  keel.fn "y" { run = function() log("y") return "Y" end },
}
)lua";

const char kFixedX[] = R"lua(
return keel.workflow "fixme" {
  keel.fn "a" { run = function() log("a") return "A" end },
  keel.fn "x" { after = { "a" }, run = function(ctx) log("x") return ctx.deps.a .. "!" end },
  keel.fn "y" { run = function() log("y") return "Y" end },
}
)lua";

TEST_CASE("resume after fixing the script re-runs only what did not finish" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("fixme.lua", Prelude(box) + kFailingX);
  ExitInfo first = box.KeelDb({"run", wf});
  INFO(first.Describe());
  REQUIRE(first.exit_code == 1);
  std::string id = RunIdFromStderr(first.err);
  std::string old_sha = box.Show(id)["script_sha256"].Str();

  SUBCASE("unchanged script fails again without redoing a") {
    ExitInfo again = box.KeelDb({"resume", id});
    INFO(again.Describe());
    CHECK(again.exit_code == 1);
    CHECK(again.err.find("changed since the run started") == std::string::npos);
    std::map<std::string, int> counts = LogCounts(box);
    CHECK(counts["a"] == 1);
    CHECK(counts["y"] == 1);
    CHECK(counts["x"] >= 2);
  }
  SUBCASE("fixed script succeeds and says the script changed") {
    box.Write("fixme.lua", Prelude(box) + kFixedX);
    ExitInfo fixed = box.KeelDb({"resume", id, "--json"});
    INFO(fixed.Describe());
    REQUIRE(fixed.exit_code == 0);
    CHECK(fixed.err.find("note: " + wf +
                         " changed since the run started; resuming with the script as it is now") !=
          std::string::npos);
    CHECK(fixed.err.find("run " + id + " resumed: 2 of 3 nodes kept") != std::string::npos);
    Json out = Json::Parse(fixed.out);
    CHECK(out["status"].Str() == "succeeded");
    CHECK(out["outputs"]["x"].Str() == "A!");
    CHECK(out["outputs"]["y"].Str() == "Y");
    std::map<std::string, int> counts = LogCounts(box);
    CHECK(counts["a"] == 1);
    CHECK(counts["y"] == 1);
    CHECK(counts["x"] == 2);
    Json show = box.Show(id);
    CHECK(show["status"].Str() == "succeeded");
    CHECK(show["script_sha256"].Str() != old_sha);
  }
}

TEST_CASE("resume is refused when a finished node was removed from the script" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("shrink.lua", Prelude(box) + R"lua(
return keel.workflow "shrink" {
  keel.fn "a" { run = function() log("a") return 1 end },
  keel.fn "gone" { run = function() log("gone") return 2 end },
  keel.fn "x" { after = { "a" }, run = function() error("not yet") end },
}
)lua");
  ExitInfo first = box.KeelDb({"run", wf});
  INFO(first.Describe());
  REQUIRE(first.exit_code == 1);
  std::string id = RunIdFromStderr(first.err);

  box.Write("shrink.lua", Prelude(box) + R"lua(
return keel.workflow "shrink" {
  keel.fn "a" { run = function() log("a") return 1 end },
  keel.fn "x" { after = { "a" }, run = function() return 3 end },
}
)lua");
  ExitInfo refused = box.KeelDb({"resume", id});
  INFO(refused.Describe());
  CHECK(refused.exit_code == 2);
  CHECK(refused.err.find("gone") != std::string::npos);
  CHECK(LogCounts(box) == std::map<std::string, int>{{"a", 1}, {"gone", 1}});
  Json show = box.Show(id);
  CHECK(show["status"].Str() == "failed");
  CHECK(StatusOf(show, "x") == "failed");
}

}  // namespace
}  // namespace keel::testing
