// Circuit breakers shared through the database by separate `keel run`
// processes: one run opens the breaker and the next is refused without
// calling the service; after the cooldown a probe closes it (or a failed
// probe re-opens it for longer); two runs at once feed one breaker; a
// half-open probe slower than the cooldown keeps its slot, so runs started
// meanwhile never probe at once, and a probe killed with SIGKILL frees it.

#include <doctest/doctest.h>
#include <signal.h>

#include <chrono>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/breaker_listing.h"
#include "tests/support/files.h"
#include "tests/support/json.h"
#include "tests/support/keel_cli.h"
#include "tests/support/sandbox.h"

namespace keel::testing {
namespace {

constexpr int kTimeoutS = 60;
constexpr auto kWait = std::chrono::seconds(20);

// Three optional nodes in a chain, each calling the service "svc" behind one
// breaker. A call appends "RUN NODE" to calls.log in params.dir, then fails
// while params.down.
std::string Calls(double cooldown) {
  return R"lua(local keel = require "keel"
local function call(ctx)
  local f = assert(io.open(ctx.params.dir .. "/calls.log", "a"))
  f:write(ctx.run_id, " ", ctx.node, "\n")
  f:close()
  if ctx.params.down then keel.fail { kind = "transient", message = "svc is down" } end
  return ctx.node .. " ok"
end
local circuit = { key = "svc", failures = 2, cooldown = )lua" +
         std::to_string(cooldown) + R"lua( }
return keel.workflow "calls" {
  params = { dir = "", down = true },
  keel.fn "c1" { optional = true, circuit = circuit, run = call },
  keel.fn "c2" { after = { "c1" }, optional = true, circuit = circuit, run = call },
  keel.fn "c3" { after = { "c2" }, optional = true, circuit = circuit, run = call },
}
)lua";
}

// `keel run` to completion; checks the exit code and returns `keel show
// --json --events` of the run.
Json RunAndShow(const Sandbox& box, const std::string& wf, int expected_exit,
                const std::vector<std::string>& extra) {
  std::vector<std::string> args{"run", wf};
  args.insert(args.end(), extra.begin(), extra.end());
  ExitInfo r = box.KeelDb(args, kWait);
  INFO(r.Describe());
  REQUIRE_FALSE(r.timed_out);
  REQUIRE(r.exit_code == expected_exit);
  return box.Show(RunIdFromStderr(r.err), true);
}

// How many events of `kind` `show` holds, for `node` when it is not empty.
int CountEvents(const Json& show, const std::string& kind, const std::string& node = "") {
  int n = 0;
  for (size_t i = 0; i < show["events"].Size(); ++i) {
    Json e = show["events"][i];
    if (e["kind"].Str() == kind && (node.empty() || e["node"].Str() == node)) ++n;
  }
  return n;
}

// Waits until open breaker `key` lets a probe through.
bool WaitHalfOpen(const Sandbox& box, const std::string& key) {
  return WaitUntil(
      [&] {
        Json b = ListedBreaker(box, key);
        return b["state"].Str() == "open" && b["half_open_in_s"].IsNumber() &&
               b["half_open_in_s"].Num() <= 0;
      },
      kWait);
}

int CallsLogged(const Sandbox& box) {
  int n = 0;
  for (const auto& [line, count] : CountLines(ReadFile(box.Path("calls.log")).value_or(""))) {
    n += count;
  }
  return n;
}

TEST_CASE("breaker: opened by one process, it refuses the next and a probe closes it" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  // The cooldown leaves the second run, started right after the first, ample time.
  std::string wf = box.Write("calls.lua", Calls(3));
  const std::vector<std::string> down{"-p", "dir=" + box.dir()};

  // Run 1: c1 and c2 fail and open the breaker; c3 is refused.
  Json first = RunAndShow(box, wf, 3, down);
  CHECK(CountEvents(first, "breaker_opened", "c2") == 1);
  CHECK(CountEvents(first, "circuit_rejected", "c3") == 1);
  CHECK(NodeEntry(first["nodes"], "c3")["error_kind"].Str() == "circuit_open");
  CHECK(CallsLogged(box) == 2);
  Json opened = ListedBreaker(box, "svc");
  CHECK(opened["state"].Str() == "open");
  CHECK(opened["failures"].Int() == 2);

  // Run 2, another process: refused at once, no call made.
  Json second = RunAndShow(box, wf, 3, down);
  for (const char* node : {"c1", "c2", "c3"}) {
    CAPTURE(node);
    Json entry = NodeEntry(second["nodes"], node);
    CHECK(entry["error_kind"].Str() == "circuit_open");
    CHECK(entry["attempts"].Int() == 0);
  }
  CHECK(CountEvents(second, "circuit_rejected") == 3);
  CHECK(CallsLogged(box) == 2);

  // Run 3, after the cooldown: c1 is the probe; it succeeds and closes the breaker.
  REQUIRE(WaitHalfOpen(box, "svc"));
  std::vector<std::string> up = down;
  up.insert(up.end(), {"-p", "down=false"});
  Json third = RunAndShow(box, wf, 0, up);
  CHECK(CountEvents(third, "breaker_half_open", "c1") == 1);
  CHECK(CountEvents(third, "breaker_closed", "c1") == 1);
  CHECK(CountEvents(third, "circuit_rejected") == 0);
  CHECK(CallsLogged(box) == 5);
  Json closed = ListedBreaker(box, "svc");
  CHECK(closed["state"].Str() == "closed");
  CHECK(closed["failures"].Int() == 0);
  CHECK(closed["half_open_in_s"].IsNull());
}

TEST_CASE("breaker: a failed probe re-opens it with the cooldown times factor" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("calls.lua", Calls(1));
  const std::vector<std::string> down{"-p", "dir=" + box.dir()};
  RunAndShow(box, wf, 3, down);
  REQUIRE(WaitHalfOpen(box, "svc"));

  Json probe = RunAndShow(box, wf, 3, down);
  CHECK(CountEvents(probe, "breaker_half_open", "c1") == 1);
  CHECK(CountEvents(probe, "breaker_reopened", "c1") == 1);
  CHECK(NodeEntry(probe["nodes"], "c2")["error_kind"].Str() == "circuit_open");
  CHECK(CallsLogged(box) == 3);
  Json reopened = ListedBreaker(box, "svc");
  CHECK(reopened["state"].Str() == "open");
  CHECK(reopened["cooldown_s"].Num() == doctest::Approx(2.0));  // default factor 2
}

TEST_CASE("breaker: two processes at once feed one breaker" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  // Each run's one call announces itself with a file, waits (without holding
  // a worker) until the other run's call has announced itself too, then
  // fails: both failures land while both processes are running.
  std::string wf = box.Write("pair.lua", R"lua(local keel = require "keel"
local function exists(path)
  local f = io.open(path, "r")
  if f then f:close() return true end
  return false
end
return keel.workflow "pair" {
  params = { dir = "", me = "", other = "" },
  keel.fn "call" {
    circuit = { key = "svc", failures = 2, cooldown = 60 },
    run = function(ctx)
      local p = ctx.params
      assert(io.open(p.dir .. "/" .. p.me, "w")):close()
      for i = 1, 2000 do
        if exists(p.dir .. "/" .. p.other) then
          keel.fail { kind = "transient", message = "svc is down" }
        end
        keel.sleep(0.01)
      end
      error(p.me .. " never saw " .. p.other .. " call")
    end,
  },
}
)lua");
  std::string dir = "dir=" + box.dir();
  std::unique_ptr<Subprocess> left =
      box.StartDb({"run", wf, "-p", dir, "-p", "me=left", "-p", "other=right"});
  std::unique_ptr<Subprocess> right =
      box.StartDb({"run", wf, "-p", dir, "-p", "me=right", "-p", "other=left"});
  int opened = 0;
  for (Subprocess* p : {left.get(), right.get()}) {
    ExitInfo r = p->Wait(kWait);
    INFO(r.Describe());
    REQUIRE_FALSE(r.timed_out);
    CHECK(r.exit_code == 1);
    Json show = box.Show(RunIdFromStderr(r.err), true);
    Json call = NodeEntry(show["nodes"], "call");
    CHECK(call["error_kind"].Str() == "transient");  // both calls went out
    CHECK(call["attempts"].Int() == 1);
    opened += CountEvents(show, "breaker_opened");
  }
  CHECK(opened == 1);
  Json svc = ListedBreaker(box, "svc");
  CHECK(svc["state"].Str() == "open");
  CHECK(svc["calls"].Int() == 2);
  CHECK(svc["failed"].Int() == 2);
}

// One node behind breaker "svc" (failures 1, cooldown 1, probes 1, factor
// 1). A call appends "start RUN" to probes.log, fails at once while
// params.down, else waits params.hold seconds, appends "end RUN", and fails
// when params.fail_after. It retries only circuit_open rejections, so each
// run keeps asking for a probe slot until it gets one.
constexpr char kSlowProbe[] = R"lua(local keel = require "keel"
local function note(ctx, what)
  local f = assert(io.open(ctx.params.dir .. "/probes.log", "a"))
  f:write(what, " ", ctx.run_id, "\n")
  f:close()
end
return keel.workflow "slow_probe" {
  params = { dir = "", down = false, hold = 0, fail_after = false },
  keel.fn "probe" {
    circuit = { key = "svc", failures = 1, cooldown = 1, factor = 1, probes = 1 },
    retry = { attempts = 60, base = 0.2, max = 0.2, jitter = "none", on = { "circuit_open" } },
    run = function(ctx)
      note(ctx, "start")
      if ctx.params.down then keel.fail { kind = "transient", message = "svc is down" } end
      keel.sleep(ctx.params.hold)
      note(ctx, "end")
      if ctx.params.fail_after then keel.fail { kind = "transient", message = "still down" } end
      return "ok"
    end,
  },
}
)lua";

struct ProbeLog {
  int starts = 0;
  int ends = 0;
  int max_overlap = 0;  // calls between their start and end at once
};

ProbeLog ReadProbeLog(const Sandbox& box) {
  ProbeLog log;
  std::istringstream in(ReadFile(box.Path("probes.log")).value_or(""));
  std::string what, run;
  int running = 0;
  while (in >> what >> run) {
    if (what == "start") {
      ++log.starts;
      log.max_overlap = std::max(log.max_overlap, ++running);
    } else {
      ++log.ends;
      --running;
    }
  }
  return log;
}

// Opens breaker "svc" with a failing call and waits for its cooldown.
void OpenSvc(const Sandbox& box, const std::string& wf) {
  ExitInfo r = box.KeelDb({"run", wf, "-p", "dir=" + box.dir(), "-p", "down=true"}, kWait);
  INFO(r.Describe());
  REQUIRE_FALSE(r.timed_out);
  REQUIRE(r.exit_code == 1);
  REQUIRE(ListedBreaker(box, "svc")["state"].Str() == "open");
  REQUIRE(WaitHalfOpen(box, "svc"));
  WriteFile(box.Path("probes.log"), "");
}

TEST_CASE("breaker: probes slower than the cooldown never overlap across processes" *
          doctest::timeout(120)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("slow_probe.lua", kSlowProbe);
  OpenSvc(box, wf);
  // Four runs, each probing for 2.5 s (2.5 cooldowns) and failing, which
  // re-opens the breaker for another cooldown: the runs take turns.
  const int kRuns = 4;
  std::vector<std::unique_ptr<Subprocess>> runs;
  for (int i = 0; i < kRuns; ++i) {
    runs.push_back(box.StartDb(
        {"run", wf, "-p", "dir=" + box.dir(), "-p", "hold=2.5", "-p", "fail_after=true"}));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  // While a probe runs, the breaker lists it with its process.
  Json holder = Json::Null();
  CHECK(WaitUntil(
      [&] {
        Json probes = ListedBreaker(box, "svc")["probes"];
        if (probes.IsArray() && probes.Size() == 1) holder = probes[0];
        return !holder.IsNull();
      },
      kWait));
  if (!holder.IsNull()) {
    bool ours = false;
    for (const auto& run : runs) ours = ours || holder["pid"].Int() == run->pid();
    CHECK(ours);
    CHECK(holder["started_at"].IsString());
  }
  for (auto& run : runs) {
    ExitInfo r = run->Wait(std::chrono::seconds(90));
    INFO(r.Describe());
    REQUIRE_FALSE(r.timed_out);
    CHECK(r.exit_code == 1);  // the probe failed; or the retries ran out
  }
  ProbeLog log = ReadProbeLog(box);
  CHECK(log.starts == kRuns);  // the slot was handed on, run after run
  CHECK(log.starts == log.ends);
  CHECK(log.max_overlap == 1);
  Json svc = ListedBreaker(box, "svc");
  CHECK(svc["probes"].Size() == 0);
}

TEST_CASE("breaker: a probe killed with SIGKILL frees its slot" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("slow_probe.lua", kSlowProbe);
  OpenSvc(box, wf);
  std::unique_ptr<Subprocess> stuck =
      box.StartDb({"run", wf, "-p", "dir=" + box.dir(), "-p", "hold=600"});
  REQUIRE(WaitUntil([&] { return ReadProbeLog(box).starts == 1; }, kWait));
  Json probes = ListedBreaker(box, "svc")["probes"];
  REQUIRE(probes.Size() == 1);
  CHECK(probes[0]["pid"].Int() == stuck->pid());
  stuck->Kill();

  // Well inside the 30 s lease: the dead owner is noticed, not waited out.
  auto started = std::chrono::steady_clock::now();
  Json next = RunAndShow(box, wf, 0, {"-p", "dir=" + box.dir()});
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(15));
  CHECK(CountEvents(next, "breaker_closed", "probe") == 1);
  CHECK(NodeEntry(next["nodes"], "probe")["attempts"].Int() == 1);
  Json svc = ListedBreaker(box, "svc");
  CHECK(svc["state"].Str() == "closed");
  CHECK(svc["probes"].Size() == 0);
}

}  // namespace
}  // namespace keel::testing
