// keel.wait, `keel signal` and `keel cancel` through the real binary: a run
// parks and exits 4 with commands that work as printed, a signal sent by
// another process reaches a run that waits in its process (--wait), an early
// signal is kept for its wait, a durable timer survives kill -9, a timed-out
// wait takes its fallback, and cancel stops running, waiting and interrupted
// runs, racing resume without both winning.

#include <doctest/doctest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/json.h"
#include "tests/support/keel_cli.h"
#include "tests/support/sandbox.h"

namespace keel::testing {
namespace {

constexpr int kTimeoutS = 120;
constexpr auto kPrompt = std::chrono::seconds(30);

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string StatusOf(const Json& show, const std::string& node) {
  return NodeEntry(show["nodes"], node)["status"].Str();
}

// The words of the first line of `text` that starts with `prefix`, from the
// word "keel" on; empty when there is none.
std::vector<std::string> CommandAfter(const std::string& text, const std::string& prefix) {
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(prefix, 0) != 0) continue;
    std::istringstream words(line.substr(line.find("keel ") + 5));
    std::vector<std::string> argv;
    for (std::string w; words >> w;) argv.push_back(w);
    return argv;
  }
  return {};
}

std::string RunId(const ExitInfo& r) { return RunIdFromStderr(r.err); }

// Starts `keel <args> --db DB` and returns it once it printed its run id.
std::unique_ptr<Subprocess> StartRun(const Sandbox& box, const std::vector<std::string>& args,
                                     std::string* id) {
  auto p = box.StartDb(args);
  auto until = Clock::now() + kPrompt;
  while (RunIdFromStderr(p->Stderr()).empty() && Clock::now() < until && !p->Exited()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  *id = RunIdFromStderr(p->Stderr());
  REQUIRE_MESSAGE(!id->empty(), p->Stderr());
  return p;
}

constexpr const char* kApproval = R"lua(local keel = require "keel"
return keel.workflow "approve" {
  keel.fn "draft" { run = function() return "text" end },
  keel.wait "approval" { after = { "draft" }, signal = "approve", timeout = 3600 },
  keel.fn "publish" { after = { "approval" }, run = function(ctx)
    return { approved = ctx.deps.approval.ok, draft = ctx.deps.draft } end },
  keel.fn "side" { run = function() return "independent" end },
}
)lua";

}  // namespace

TEST_CASE("a run parks on a signal, exits 4, and the printed commands continue it" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("approve.lua", kApproval);
  ExitInfo run = box.KeelDb({"run", wf}, kPrompt);
  INFO(run.Describe());
  REQUIRE(run.exit_code == 4);
  std::string id = RunId(run);
  REQUIRE(!id.empty());
  CHECK(run.out.find("waiting") != std::string::npos);
  CHECK(run.err.find("approval waits for signal 'approve'") != std::string::npos);

  // Parked: listed as waiting, shown with what it waits for; nothing
  // downstream started, the independent branch finished.
  Json waiting = box.Runs({"--status", "waiting"});
  REQUIRE(waiting.Size() == 1);
  CHECK(waiting[0]["run_id"].Str() == id);
  Json show = box.Show(id);
  CHECK(show["status"].Str() == "waiting");
  CHECK(StatusOf(show, "approval") == "waiting");
  CHECK(NodeEntry(show["nodes"], "approval")["waiting_for"]["signal"].Str() == "approve");
  CHECK(StatusOf(show, "side") == "succeeded");
  CHECK(StatusOf(show, "publish") == "pending");  // never started
  ExitInfo text = box.KeelDb({"show", id});
  CHECK(text.out.find("waits for signal 'approve'") != std::string::npos);

  // The printed commands, as printed (with --db), JSON filled in.
  std::vector<std::string> signal = CommandAfter(run.err, "send the signal with:");
  REQUIRE(signal.size() >= 5);
  CHECK(std::find(signal.begin(), signal.end(), "--db") != signal.end());
  for (std::string& word : signal) {
    if (word == "JSON") word = R"({"ok": true})";
  }
  ExitInfo sent = box.Keel(signal, kPrompt);
  INFO(sent.Describe());
  REQUIRE(sent.exit_code == 0);
  std::vector<std::string> resume = CommandAfter(run.err, "then continue the run with:");
  REQUIRE(!resume.empty());
  ExitInfo resumed = box.Keel(resume, kPrompt);
  INFO(resumed.Describe());
  REQUIRE(resumed.exit_code == 0);
  show = box.Show(id);
  CHECK(show["status"].Str() == "succeeded");
  CHECK(NodeEntry(show["nodes"], "approval")["output"]["ok"].Bool());
  CHECK(NodeEntry(show["nodes"], "publish")["output"]["approved"].Bool());
  CHECK(box.Runs({"--status", "waiting"}).Size() == 0);
}

TEST_CASE("--wait takes a signal sent by another process" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("approve.lua", kApproval);
  std::string id;
  auto run = StartRun(box, {"run", wf, "--wait", "--json"}, &id);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK_FALSE(run->Exited());  // it waits
  auto sent_at = Clock::now();
  ExitInfo sent = box.KeelDb({"signal", id, "approve", "--data", R"({"ok": true})"}, kPrompt);
  INFO(sent.Describe());
  REQUIRE(sent.exit_code == 0);
  ExitInfo done = run->Wait(kPrompt);
  INFO(done.Describe());
  REQUIRE(done.exit_code == 0);
  CHECK(SecondsSince(sent_at) < 5);
  Json out = Json::Parse(done.out);
  CHECK(out["outputs"]["publish"]["approved"].Bool());
}

TEST_CASE("a signal sent before its wait is reached is kept for it" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("two.lua", R"lua(local keel = require "keel"
return keel.workflow "two" {
  keel.wait "first" { signal = "a" },
  keel.wait "second" { after = { "first" }, signal = "b" },
  keel.fn "out" { after = { "second" }, run = function(ctx) return ctx.deps.second end },
}
)lua");
  ExitInfo run = box.KeelDb({"run", wf}, kPrompt);
  REQUIRE(run.exit_code == 4);
  std::string id = RunId(run);
  // "b" is for a wait not reached yet: kept, with a note.
  ExitInfo early = box.KeelDb({"signal", id, "b", "--data", "[1,2]"}, kPrompt);
  INFO(early.Describe());
  CHECK(early.exit_code == 0);
  CHECK(early.err.find("kept for a later wait") != std::string::npos);
  REQUIRE(box.KeelDb({"signal", id, "a"}, kPrompt).exit_code == 0);
  ExitInfo resumed = box.KeelDb({"resume", id, "--json"}, kPrompt);
  INFO(resumed.Describe());
  REQUIRE(resumed.exit_code == 0);
  Json out = Json::Parse(resumed.out);
  CHECK(out["outputs"]["out"][1].Int() == 2);
  Json show = box.Show(id);
  CHECK(NodeEntry(show["nodes"], "first")["output"].IsNull());  // no --data: null
}

TEST_CASE("signal errors: unknown run, finished run, bad JSON exit 2" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string ok = box.Write("ok.lua", R"lua(local keel = require "keel"
return keel.workflow "ok" { keel.fn "a" { run = function() return 1 end } }
)lua");
  ExitInfo run = box.KeelDb({"run", ok}, kPrompt);
  REQUIRE(run.exit_code == 0);
  std::string id = RunId(run);
  ExitInfo finished = box.KeelDb({"signal", id, "go"}, kPrompt);
  CHECK(finished.exit_code == 2);
  CHECK(finished.err.find("already succeeded") != std::string::npos);
  ExitInfo unknown = box.KeelDb({"signal", "nosuchrun", "go"}, kPrompt);
  CHECK(unknown.exit_code == 2);
  CHECK(unknown.err.find("nosuchrun") != std::string::npos);
  ExitInfo bad = box.KeelDb({"signal", id, "go", "--data", "{oops"}, kPrompt);
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.find("--data is not valid JSON") != std::string::npos);
  ExitInfo cancel_done = box.KeelDb({"cancel", id}, kPrompt);
  CHECK(cancel_done.exit_code == 2);
  CHECK(cancel_done.err.find("nothing to cancel") != std::string::npos);
  CHECK(box.KeelDb({"cancel", "nosuchrun"}, kPrompt).exit_code == 2);
}

TEST_CASE("kill -9 during a durable timer: the resume waits only the remainder" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("cool.lua", R"lua(local keel = require "keel"
return keel.workflow "cool" {
  keel.wait "cool" { delay = 5 },
  keel.fn "after" { after = { "cool" }, run = function(ctx) return ctx.deps.cool.due end },
}
)lua");
  auto started = Clock::now();
  std::string id;
  auto run = StartRun(box, {"run", wf, "--wait"}, &id);
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  REQUIRE_FALSE(run->Exited());
  run->Kill();
  CHECK(box.Show(id)["status"].Str() == "interrupted");
  auto resumed_at = Clock::now();
  ExitInfo resumed = box.KeelDb({"resume", id, "--wait"}, kPrompt);
  INFO(resumed.Describe());
  REQUIRE(resumed.exit_code == 0);
  double resume_took = SecondsSince(resumed_at);
  double total = SecondsSince(started);
  CHECK(total >= 5.0);       // the timer ran its full delay in all
  CHECK(resume_took < 4.0);  // but the resume waited only what was left (a restart: 5 s)
  Json show = box.Show(id);
  CHECK(StatusOf(show, "after") == "succeeded");
}

TEST_CASE("a timed-out signal wait takes its fallback" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("fb.lua", R"lua(local keel = require "keel"
keel.workflow "auto" { keel.fn "output" { run = function() return { ok = "auto" } end } }
return keel.workflow "fb" {
  keel.wait "approval" { signal = "approve", timeout = 1, fallback = "auto" },
  keel.fn "use" { after = { "approval" }, run = function(ctx) return ctx.deps.approval.ok end },
}
)lua");
  auto started = Clock::now();
  ExitInfo run = box.KeelDb({"run", wf, "--wait", "--json"}, kPrompt);
  INFO(run.Describe());
  REQUIRE(run.exit_code == 0);
  CHECK(SecondsSince(started) >= 1.0);
  Json out = Json::Parse(run.out);
  CHECK(out["nodes"]["approval"]["status"].Str() == "fallback");
  CHECK(out["outputs"]["use"].Str() == "auto");
  Json show = box.Show(RunId(run), /*events=*/true);
  bool timed_out = false;
  for (size_t i = 0; i < show["events"].Size(); ++i) {
    Json e = show["events"][i];
    if (e["kind"].Str() == "attempt_failed" && e["data"]["kind"].Str() == "timeout")
      timed_out = true;
  }
  CHECK(timed_out);
}

TEST_CASE("cancel stops a running run within a second; its nodes are recorded" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("slow.lua", R"lua(local keel = require "keel"
return keel.workflow "slow" {
  keel.fn "quick" { run = function() return 1 end },
  keel.fn "slow" { after = { "quick" }, run = function() keel.sleep(60) return 2 end },
}
)lua");
  std::string id;
  auto run = StartRun(box, {"run", wf}, &id);
  REQUIRE(run->WaitForStderr("slow started", kPrompt));
  auto asked = Clock::now();
  ExitInfo cancel = box.KeelDb({"cancel", id}, kPrompt);
  INFO(cancel.Describe());
  CHECK(cancel.exit_code == 0);
  ExitInfo done = run->Wait(kPrompt);
  double took = SecondsSince(asked);
  INFO(done.Describe());
  CHECK(done.exit_code == 1);
  CHECK(took < 3.0);
  Json show = box.Show(id);
  CHECK(show["status"].Str() == "cancelled");
  CHECK(StatusOf(show, "quick") == "succeeded");
  CHECK(StatusOf(show, "slow") == "cancelled");
  ExitInfo resume = box.KeelDb({"resume", id}, kPrompt);
  CHECK(resume.exit_code == 2);
  CHECK(resume.err.find("cancelled run cannot be resumed") != std::string::npos);
}

TEST_CASE("cancel a waiting and an interrupted run; gc deletes a cancelled run" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("approve.lua", kApproval);
  ExitInfo parked = box.KeelDb({"run", wf}, kPrompt);
  REQUIRE(parked.exit_code == 4);
  std::string waiting = RunId(parked);
  ExitInfo cancel = box.KeelDb({"cancel", waiting}, kPrompt);
  INFO(cancel.Describe());
  REQUIRE(cancel.exit_code == 0);
  CHECK(cancel.out.find("it was waiting") != std::string::npos);
  Json show = box.Show(waiting);
  CHECK(show["status"].Str() == "cancelled");
  CHECK(StatusOf(show, "approval") == "cancelled");
  CHECK(StatusOf(show, "draft") == "succeeded");
  CHECK(box.KeelDb({"signal", waiting, "approve"}, kPrompt).exit_code == 2);
  CHECK(box.KeelDb({"cancel", waiting}, kPrompt).exit_code == 2);

  std::string slow = box.Write("slow.lua", R"lua(local keel = require "keel"
return keel.workflow "slow" { keel.fn "slow" { run = function() keel.sleep(60) return 2 end } }
)lua");
  std::string interrupted;
  auto run = StartRun(box, {"run", slow}, &interrupted);
  REQUIRE(run->WaitForStderr("slow started", kPrompt));
  run->Kill();
  CHECK(box.Show(interrupted)["status"].Str() == "interrupted");
  cancel = box.KeelDb({"cancel", interrupted}, kPrompt);
  INFO(cancel.Describe());
  REQUIRE(cancel.exit_code == 0);
  show = box.Show(interrupted);
  CHECK(show["status"].Str() == "cancelled");
  CHECK(StatusOf(show, "slow") == "cancelled");

  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  ExitInfo gc = box.KeelDb({"gc", "--older-than", "1s"}, kPrompt);
  INFO(gc.Describe());
  REQUIRE(gc.exit_code == 0);
  CHECK(gc.out.find("deleted 2 runs") != std::string::npos);
  CHECK(box.Runs().Size() == 0);
}

TEST_CASE("cancel racing resume is decided once" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("approve.lua", kApproval);
  for (int round = 0; round < 4; ++round) {
    ExitInfo parked = box.KeelDb({"run", wf}, kPrompt);
    REQUIRE(parked.exit_code == 4);
    std::string id = RunId(parked);
    auto resume = std::async(std::launch::async, [&] {
      return box.KeelDb({"resume", id, "--wait"}, kPrompt);
    });
    auto cancel = std::async(std::launch::async, [&] {
      return box.KeelDb({"cancel", id}, kPrompt);
    });
    ExitInfo c = cancel.get();
    ExitInfo r = resume.get();
    INFO(c.Describe());
    INFO(r.Describe());
    CHECK_FALSE(r.timed_out);
    CHECK(c.exit_code == 0);  // the cancel always wins the run...
    // ...and the resume either was refused, or claimed first and was stopped.
    CHECK((r.exit_code == 2 || r.exit_code == 1));
    CHECK(box.Show(id)["status"].Str() == "cancelled");
  }
}

}  // namespace keel::testing

namespace keel::testing {

TEST_CASE("keel.wait options are checked at the declaring line" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  struct Case {
    std::string body;
    std::string message;
  };
  const Case cases[] = {
      {R"(keel.wait "w" { signl = "go" })", "unknown option 'signl' (did you mean 'signal'?)"},
      {R"(keel.wait "w" { after = {} })", "a wait needs option 'signal'"},
      {R"(keel.wait "w" { signal = "go", delay = 5 })", "exclude each other"},
      {R"(keel.wait "w" { delay = 5, timeout = 3 })", "'timeout' is for signal waits"},
      {R"(keel.wait "w" { delay = -1 })", "option 'delay'"},
      {R"(keel.wait "w" { signal = "go", run = function() end })",
       "option 'run' is for keel.fn and keel.agent nodes"},
  };
  for (const Case& c : cases) {
    std::string wf = box.Write("bad.lua",
                               "local keel = require \"keel\"\nreturn keel.workflow "
                               "\"bad\" {\n  " +
                                   c.body + ",\n}\n");
    ExitInfo r = box.Keel({"validate", wf}, kPrompt);
    INFO(c.body);
    INFO(r.Describe());
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("bad.lua:3: node 'w': ") != std::string::npos);
    CHECK(r.err.find(c.message) != std::string::npos);
  }
}

TEST_CASE("a wait whose `when` says no is skipped and nothing parks" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("skip.lua", R"lua(local keel = require "keel"
return keel.workflow "skip" {
  params = { review = false },
  keel.wait "approval" { signal = "approve", when = function(ctx) return ctx.params.review end },
  keel.fn "out" { after = { "approval" }, run = function(ctx) return #ctx.skipped end },
}
)lua");
  ExitInfo run = box.KeelDb({"run", wf, "--json"}, kPrompt);
  INFO(run.Describe());
  REQUIRE(run.exit_code == 0);
  CHECK(Json::Parse(run.out)["outputs"]["out"].Int() == 1);
  ExitInfo parked = box.KeelDb({"run", wf, "-p", "review=true", "--json"}, kPrompt);
  CHECK(parked.exit_code == 4);
  Json report = Json::Parse(parked.out);
  CHECK(report["status"].Str() == "waiting");
  CHECK(report["nodes"]["approval"]["waiting_for"]["signal"].Str() == "approve");
}

}  // namespace keel::testing
