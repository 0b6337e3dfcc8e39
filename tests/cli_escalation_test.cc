// `keel.workflow { on_failure = "notify" }` through the real `keel` binary:
// a failed run runs notify once with ctx.failure, recorded in the run and
// shown by `keel show`; a successful run does not; a failing escalation
// escalates nothing; resumes escalate once per failed end; bad names are
// load errors with file:line.

#include <doctest/doctest.h>

#include <string>

#include "tests/support/json.h"
#include "tests/support/keel_cli.h"
#include "tests/support/sandbox.h"

namespace keel::testing {
namespace {

constexpr int kTimeoutS = 120;

// main's node `work` fails until the file OK exists; notify records what
// ctx told it. `send` fails when params.notify_fails is set.
std::string Flow(const Sandbox& box) {
  return R"lua(local keel = require "keel"
local OK = ")lua" + box.Path("ok") + R"lua("
keel.workflow "pager" { keel.fn "page" { run = function() return "paged" end } }
keel.workflow "notify" {
  on_failure = "pager",
  params = { channel = "#ops" },
  keel.fn "send" { run = function(ctx)
    if ctx.params.notify_fails then error("smtp down") end
    local f = ctx.failure
    return { run_id = ctx.run_id, failure_run = f.run_id, workflow = f.workflow, node = f.node,
             kind = f.kind, message = f.message, attempts = f.attempts, failed = #f.failed,
             escalation = f.escalation, channel = ctx.params.channel, who = ctx.params.who }
  end },
}
return keel.workflow "main" {
  on_failure = "notify",
  params = { who = "ann", notify_fails = false },
  keel.fn "prepare" { run = function() return 1 end },
  keel.fn "work" { after = { "prepare" }, run = function()
    local f = io.open(OK, "r")
    if not f then keel.fail{ kind = "permanent", message = "quota exceeded" } end
    f:close()
    return "done"
  end },
  keel.fn "publish" { after = { "work" }, run = function() return "published" end },
}
)lua";
}

// The recorded nodes of `show` whose name starts with `prefix`.
int CountNodes(const Json& show, const std::string& prefix) {
  int n = 0;
  for (size_t i = 0; i < show["nodes"].Size(); ++i) {
    n += show["nodes"][i]["node"].Str().rfind(prefix, 0) == 0 ? 1 : 0;
  }
  return n;
}

int CountEvents(const Json& show, const std::string& kind) {
  int n = 0;
  for (size_t i = 0; i < show["events"].Size(); ++i) {
    n += show["events"][i]["kind"].Str() == kind ? 1 : 0;
  }
  return n;
}

bool Has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("a failed run escalates once to its on_failure workflow" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string flow = box.Write("flow.lua", Flow(box));
  ExitInfo ran = box.KeelDb({"run", flow, "--json"});
  INFO(ran.Describe());
  REQUIRE(ran.exit_code == 1);
  Json report = Json::Parse(ran.out);
  CHECK(report["status"].Str() == "failed");
  CHECK(report["escalation"]["workflow"].Str() == "notify");
  CHECK(report["escalation"]["status"].Str() == "succeeded");
  CHECK(Has(ran.err, "on_failure#1/send succeeded"));
  std::string id = report["run_id"].Str();

  Json show = box.Show(id, /*events=*/true);
  CHECK(show["status"].Str() == "failed");
  CHECK(Has(show["error"].Str(), "work: permanent: quota exceeded"));
  Json send = NodeEntry(show["nodes"], "on_failure#1/send");
  CHECK(send["status"].Str() == "succeeded");
  Json out = send["output"];
  CHECK(out["run_id"].Str() == id);
  CHECK(out["failure_run"].Str() == id);
  CHECK(out["workflow"].Str() == "main");
  CHECK(out["node"].Str() == "work");
  CHECK(out["kind"].Str() == "permanent");
  CHECK(out["message"].Str() == "quota exceeded");
  CHECK(out["attempts"].Int() == 1);
  CHECK(out["failed"].Int() == 1);
  CHECK(out["escalation"].Int() == 1);
  CHECK(out["channel"].Str() == "#ops");
  CHECK(out["who"].Str() == "ann");
  CHECK(CountNodes(show, "on_failure") == 1);
  CHECK(CountEvents(show, "escalation_started") == 1);
  CHECK(CountEvents(show, "escalation_finished") == 1);
  REQUIRE(show["escalations"].Size() == 1);
  CHECK(show["escalations"][0]["workflow"].Str() == "notify");
  CHECK(show["escalations"][0]["status"].Str() == "succeeded");

  ExitInfo text = box.KeelDb({"show", id});
  INFO(text.Describe());
  CHECK(Has(text.out, "escalated notify (on_failure#1): succeeded"));
  CHECK(Has(text.out, "\non_failure#1/send  succeeded"));

  // `keel runs` counts the run's own nodes only.
  Json runs = box.Runs();
  CHECK(runs[0]["nodes_total"].Int() == 3);
}

TEST_CASE("a run that succeeds does not escalate" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  box.Write("ok", "");
  ExitInfo ran = box.KeelDb({"run", box.Write("flow.lua", Flow(box)), "--json"});
  INFO(ran.Describe());
  REQUIRE(ran.exit_code == 0);
  Json report = Json::Parse(ran.out);
  CHECK(report["escalation"].IsNull());
  Json show = box.Show(report["run_id"].Str(), /*events=*/true);
  CHECK(CountNodes(show, "on_failure") == 0);
  CHECK(CountEvents(show, "escalation_started") == 0);
  CHECK(show["escalations"].Size() == 0);
}

TEST_CASE("an escalation that fails is recorded and escalates nothing" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string flow = box.Write("flow.lua", Flow(box));
  ExitInfo ran = box.KeelDb({"run", flow, "-p", "notify_fails=true"});
  INFO(ran.Describe());
  REQUIRE(ran.exit_code == 1);
  // The Lua error inside the escalation is reported, with its line.
  CHECK(Has(ran.out, "escalated to notify: failed: on_failure#1/send: error: "));
  CHECK(Has(ran.out, "flow.lua:8: smtp down"));
  Json show = box.Show(RunIdFromStderr(ran.err), /*events=*/true);
  CHECK(show["status"].Str() == "failed");
  CHECK(NodeEntry(show["nodes"], "on_failure#1/send")["status"].Str() == "failed");
  CHECK(Has(NodeEntry(show["nodes"], "on_failure#1/send")["error"].Str(), "smtp down"));
  // notify's own on_failure (pager) is not used while notify escalates.
  CHECK(CountNodes(show, "on_failure") == 1);
  CHECK(Has(show.Dump(), "paged") == false);
  CHECK(CountEvents(show, "escalation_started") == 1);
  CHECK(show["escalations"][0]["status"].Str() == "failed");
  CHECK(Has(show["escalations"][0]["error"].Str(), "smtp down"));
}

TEST_CASE("resume escalates once per failed end" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string flow = box.Write("flow.lua", Flow(box));
  ExitInfo ran = box.KeelDb({"run", flow});
  REQUIRE(ran.exit_code == 1);
  std::string id = RunIdFromStderr(ran.err);

  ExitInfo again = box.KeelDb({"resume", id});
  INFO(again.Describe());
  REQUIRE(again.exit_code == 1);
  Json show = box.Show(id, /*events=*/true);
  CHECK(CountEvents(show, "escalation_started") == 2);
  CHECK(NodeEntry(show["nodes"], "on_failure#2/send")["output"]["escalation"].Int() == 2);
  CHECK(NodeEntry(show["nodes"], "on_failure#2/send")["output"]["attempts"].Int() == 2);

  box.Write("ok", "");
  ExitInfo fixed = box.KeelDb({"resume", id});
  INFO(fixed.Describe());
  REQUIRE(fixed.exit_code == 0);
  CHECK_FALSE(Has(fixed.out, "escalated"));
  show = box.Show(id, /*events=*/true);
  CHECK(show["status"].Str() == "succeeded");
  CHECK(CountEvents(show, "escalation_started") == 2);
  CHECK(CountNodes(show, "on_failure") == 2);

  // A finished run resumed again runs nothing and escalates nothing.
  ExitInfo done = box.KeelDb({"resume", id});
  CHECK(done.exit_code == 0);
  CHECK(CountEvents(box.Show(id, true), "escalation_started") == 2);
}

TEST_CASE("on_failure names are checked when the file loads" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  auto flow = [](const std::string& on_failure) {
    return R"lua(local keel = require "keel"
keel.workflow "notify" { keel.fn "send" { run = function() return 1 end } }
return keel.workflow "main" {
  on_failure = )lua" +
           on_failure + R"lua(,
  keel.fn "a" { run = function() return 1 end },
}
)lua";
  };
  ExitInfo typo = box.KeelDb({"run", box.Write("typo.lua", flow("\"notfy\""))});
  INFO(typo.Describe());
  CHECK(typo.exit_code == 2);
  CHECK(Has(typo.err, "typo.lua:3: workflow 'main': on_failure 'notfy' is not a workflow declared "
                      "in this file (did you mean 'notify'?)"));
  CHECK(box.Runs().Size() == 0);

  ExitInfo self = box.Keel({"validate", box.Write("self.lua", flow("\"main\""))});
  CHECK(self.exit_code == 2);
  CHECK(Has(self.err, "self.lua:3: workflow 'main': on_failure names the workflow itself"));

  ExitInfo number = box.Keel({"validate", box.Write("number.lua", flow("42"))});
  CHECK(number.exit_code == 2);
  CHECK(Has(number.err, "number.lua:3: workflow 'main': option 'on_failure' must be the name of a "
                        "workflow to run when a run fails, got a number"));

  ExitInfo ok = box.Keel({"validate", box.Write("ok.lua", flow("\"notify\""))});
  INFO(ok.Describe());
  CHECK(ok.exit_code == 0);
}

}  // namespace keel::testing
