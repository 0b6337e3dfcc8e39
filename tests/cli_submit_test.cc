// `keel submit` and queued runs through the real binary: submit checks the
// script and params as `keel run` does and records the run queued; `keel
// runs` and `show` list it; `keel resume` starts it from the beginning
// (run_started, the output of `keel run`); cancel records it cancelled at
// once; gc leaves it; `keel fork --queue` queues a fork.

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "tests/support/json.h"
#include "tests/support/keel_cli.h"
#include "tests/support/sandbox.h"

namespace keel::testing {
namespace {

constexpr int kTimeoutS = 120;

const char kGreet[] = R"lua(local keel = require "keel"
return keel.workflow "greet" {
  params = { name = "world", times = 1 },
  keel.fn "hello" { run = function(ctx) return "hello " .. ctx.params.name end },
  keel.fn "shout" { after = { "hello" }, run = function(ctx)
    return string.rep(string.upper(ctx.deps.hello), ctx.params.times, " ") end },
}
)lua";

std::vector<std::string> Kinds(const Json& show) {
  std::vector<std::string> kinds;
  for (size_t i = 0; i < show["events"].Size(); ++i) kinds.push_back(show["events"][i]["kind"].Str());
  return kinds;
}

int Count(const std::vector<std::string>& kinds, const std::string& kind) {
  int n = 0;
  for (const std::string& k : kinds) n += k == kind ? 1 : 0;
  return n;
}

// The trimmed stdout of a submit: the run id.
std::string IdOf(const ExitInfo& r) {
  std::string id = r.out;
  while (!id.empty() && (id.back() == '\n' || id.back() == ' ')) id.pop_back();
  return id;
}

}  // namespace

TEST_CASE("submit records a run queued; resume starts it from the beginning" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("greet.lua", kGreet);
  ExitInfo submitted = box.KeelDb({"submit", wf, "-p", "name=tea", "-p", "times=2"});
  INFO(submitted.Describe());
  REQUIRE(submitted.exit_code == 0);
  std::string id = IdOf(submitted);
  REQUIRE(!id.empty());

  // Listed and shown queued, with its params; nothing has run.
  Json queued = box.Runs({"--status", "queued"});
  REQUIRE(queued.Size() == 1);
  CHECK(queued[0]["run_id"].Str() == id);
  CHECK(queued[0]["status"].Str() == "queued");
  Json show = box.Show(id, /*events=*/true);
  CHECK(show["status"].Str() == "queued");
  CHECK(show["params"]["name"].Str() == "tea");
  CHECK(show["params"]["times"].Int() == 2);
  CHECK(show["events"].Size() == 0);
  ExitInfo text = box.KeelDb({"runs"});
  CHECK(text.out.find("queued") != std::string::npos);

  // gc leaves a queued run, however old.
  ExitInfo gc = box.KeelDb({"gc", "--older-than", "0s"});
  INFO(gc.Describe());
  CHECK(gc.exit_code == 0);
  CHECK(box.Runs({"--status", "queued"}).Size() == 1);

  // resume starts it: run_started (no run_resumed), the report of `keel run`.
  ExitInfo started = box.KeelDb({"resume", id, "--json"});
  INFO(started.Describe());
  REQUIRE(started.exit_code == 0);
  Json report = Json::Parse(started.out);
  CHECK(report["status"].Str() == "succeeded");
  CHECK(started.err.find("resum") == std::string::npos);
  show = box.Show(id, /*events=*/true);
  CHECK(show["status"].Str() == "succeeded");
  CHECK(NodeEntry(show["nodes"], "shout")["output"].Str() == "HELLO TEA HELLO TEA");
  std::vector<std::string> kinds = Kinds(show);
  CHECK(Count(kinds, "run_started") == 1);
  CHECK(Count(kinds, "run_resumed") == 0);
  CHECK(box.Runs({"--status", "queued"}).Size() == 0);
}

TEST_CASE("submit --json, and submit errors exit 2 naming the file, line or param" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("greet.lua", kGreet);
  ExitInfo json = box.KeelDb({"submit", wf, "--json"});
  INFO(json.Describe());
  REQUIRE(json.exit_code == 0);
  Json doc = Json::Parse(json.out);
  CHECK(!doc["run_id"].Str().empty());
  CHECK(doc["status"].Str() == "queued");

  ExitInfo unknown = box.KeelDb({"submit", wf, "-p", "nmae=x"});
  CHECK(unknown.exit_code == 2);
  CHECK(unknown.err.find("nmae") != std::string::npos);
  CHECK(unknown.err.find("name") != std::string::npos);

  ExitInfo syntax = box.KeelDb({"submit", wf, "-p", "novalue"});
  CHECK(syntax.exit_code == 2);
  CHECK(syntax.err.find("key=value") != std::string::npos);

  std::string broken = box.Write("broken.lua", "local keel = require \"keel\"\nreturn keel.workflow \"b\" {\n  keel.fn \"x\" { after = { \"nope\" }, run = function() end },\n}\n");
  ExitInfo bad = box.KeelDb({"submit", broken});
  INFO(bad.Describe());
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.find("broken.lua") != std::string::npos);
  CHECK(bad.err.find("nope") != std::string::npos);

  ExitInfo missing = box.KeelDb({"submit", box.Path("missing.lua")});
  CHECK(missing.exit_code == 2);
  CHECK(missing.err.find("missing.lua") != std::string::npos);
  // Only the good submit was recorded.
  CHECK(box.Runs().Size() == 1);
}

TEST_CASE("cancel records a queued run cancelled at once; it cannot be started" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("greet.lua", kGreet);
  std::string id = IdOf(box.KeelDb({"submit", wf}));
  REQUIRE(!id.empty());
  ExitInfo cancel = box.KeelDb({"cancel", id});
  INFO(cancel.Describe());
  REQUIRE(cancel.exit_code == 0);
  CHECK(cancel.out.find("was queued") != std::string::npos);
  CHECK(box.Show(id)["status"].Str() == "cancelled");
  ExitInfo resume = box.KeelDb({"resume", id});
  CHECK(resume.exit_code == 2);
  CHECK(resume.err.find("cancelled") != std::string::npos);
}

TEST_CASE("fork --queue queues a fork with new params; resume starts it keeping the rest" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("greet.lua", kGreet);
  ExitInfo run = box.KeelDb({"run", wf, "-p", "name=tea"});
  REQUIRE(run.exit_code == 0);
  std::string source = RunIdFromStderr(run.err);
  REQUIRE(!source.empty());
  ExitInfo forked =
      box.KeelDb({"fork", source, "--queue", "--json", "--from", "shout", "-p", "times=3"});
  INFO(forked.Describe());
  REQUIRE(forked.exit_code == 0);
  std::string id = Json::Parse(forked.out)["run_id"].Str();
  REQUIRE(!id.empty());
  CHECK(box.Show(id)["status"].Str() == "queued");
  ExitInfo started = box.KeelDb({"resume", id});
  INFO(started.Describe());
  REQUIRE(started.exit_code == 0);
  Json show = box.Show(id, /*events=*/true);
  CHECK(NodeEntry(show["nodes"], "shout")["output"].Str() == "HELLO TEA HELLO TEA HELLO TEA");
  CHECK(NodeEntry(show["nodes"], "hello")["attempts"].Int() == 1);
  CHECK(show["events"][0]["kind"].Str() == "run_started");
  CHECK(show["events"][0]["data"]["forked_from"].Str() == source);
}

}  // namespace keel::testing
