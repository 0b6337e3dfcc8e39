// on_failure on PostgreSQL: `keel run --db postgresql://...` submits a
// workflow with an on_failure to workers (itself among them) and escalates
// as on SQLite, reporting the escalation; so does a submitted run that
// `keel resume` works on. (cli_worker_escalation_test.cc: races, killed and
// paused workers.)

#include <doctest/doctest.h>

#include <string>

#include "tests/support/json.h"
#include "tests/support/keel_cli.h"
#include "tests/support/pg_database.h"
#include "tests/support/sandbox.h"

namespace keel::testing {
namespace {

const char kFlow[] = R"lua(local keel = require "keel"
keel.workflow "notify" { keel.fn "send" { run = function(ctx)
  return { node = ctx.failure.node, message = ctx.failure.message }
end } }
return keel.workflow "main" {
  on_failure = "notify",
  keel.fn "work" { run = function() keel.fail{ kind = "permanent", message = "quota exceeded" } end },
}
)lua";

int CountEvents(const Json& show, const std::string& kind) {
  int n = 0;
  for (size_t i = 0; i < show["events"].Size(); ++i) {
    n += show["events"][i]["kind"].Str() == kind ? 1 : 0;
  }
  return n;
}

Json Show(const Sandbox& box, const std::string& id, const std::string& url) {
  ExitInfo shown = box.Keel({"show", id, "--events", "--json", "--db", url});
  INFO(shown.Describe());
  REQUIRE(shown.exit_code == 0);
  return Json::Parse(shown.out);
}

}  // namespace

TEST_CASE("keel run on PostgreSQL escalates a run its workers ran" * doctest::timeout(180)) {
  auto url = test::FreshPgDatabase("escalation");
  if (!url) {
    MESSAGE("no PostgreSQL server");
    return;
  }
  Sandbox box(KEEL_BIN);
  std::string flow = box.Write("flow.lua", kFlow);
  ExitInfo ran = box.Keel({"run", flow, "--db", *url, "--json"});
  INFO(ran.Describe());
  REQUIRE(ran.exit_code == 1);
  Json report = Json::Parse(ran.out);
  CHECK(report["escalation"]["status"].Str() == "succeeded");
  Json show = Show(box, report["run_id"].Str(), *url);
  CHECK(show["status"].Str() == "failed");
  Json send = NodeEntry(show["nodes"], "on_failure#1/send");
  CHECK(send["status"].Str() == "succeeded");
  CHECK(send["output"]["node"].Str() == "work");
  CHECK(send["output"]["message"].Str() == "quota exceeded");
  CHECK(CountEvents(show, "escalation_started") == 1);
  CHECK(CountEvents(show, "escalation_finished") == 1);
  // Submitted to workers (this process among them), not run in-process.
  ExitInfo text = box.Keel({"run", flow, "--db", *url});
  CHECK(text.exit_code == 1);
  CHECK(text.err.find("started: workflow main (1 nodes)") != std::string::npos);
  CHECK(text.out.find("escalated to notify: succeeded") != std::string::npos);

  // Submitted, then worked on by `keel resume`, the run escalates the same way.
  ExitInfo submitted = box.Keel({"submit", flow, "--db", *url});
  INFO(submitted.Describe());
  REQUIRE(submitted.exit_code == 0);
  std::string id = submitted.out.substr(0, submitted.out.find('\n'));
  ExitInfo worked = box.Keel({"resume", id, "--db", *url});
  INFO(worked.Describe());
  CHECK(worked.exit_code == 1);
  show = Show(box, id, *url);
  CHECK(show["status"].Str() == "failed");
  CHECK(CountEvents(show, "escalation_started") == 1);
  CHECK(CountEvents(show, "escalation_finished") == 1);
  CHECK(NodeEntry(show["nodes"], "on_failure#1/send")["output"]["node"].Str() == "work");
}

}  // namespace keel::testing
