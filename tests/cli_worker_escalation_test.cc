// on_failure escalations of runs executed by `keel worker` processes against
// a real PostgreSQL server (store/postgres/pg_escalations.h): a run that
// settles failed is escalated once by one worker, recorded in the run as the
// in-process path records it; racing workers escalate it once; a worker
// killed or paused mid-escalation has it finished by another after its
// lease, recorded once (escalation_started written by the first claim to
// start it, the rest when it ends); an escalation that fails does not loop; a run that
// succeeds does not escalate; a resumed run that fails again escalates as #2.

#include <doctest/doctest.h>
#include <signal.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/files.h"
#include "tests/support/json.h"
#include "tests/support/keel_cli.h"
#include "tests/support/sandbox.h"
#include "tests/support/temp_dir.h"
#include "tests/worker_test_util.h"

namespace keel::testing {
namespace {

using namespace std::chrono_literals;

// "main" fails in "work"; "notify" (its on_failure) runs `escalation_node`.
std::string Flow(const std::string& escalation_node) {
  return R"lua(local keel = require "keel"
keel.workflow "notify" {
)lua" + escalation_node +
         R"lua(
}
return keel.workflow "main" {
  on_failure = "notify",
  params = { channel = "#ops" },
  keel.fn "ok" { run = function() return 1 end },
  keel.fn "work" { after = { "ok" }, run = function()
    keel.fail{ kind = "permanent", message = "quota exceeded" } end },
}
)lua";
}

// An escalation node that answers what ctx.failure says.
const char kSend[] = R"lua(  keel.fn "send" { run = function(ctx)
    local f = ctx.failure
    return { node = f.node, message = f.message, kind = f.kind, run = f.run_id,
             escalation = f.escalation, error = f.error, params = ctx.params.channel }
  end },)lua";

// An escalation node that takes a while, then answers its worker's pid.
const char kSlowSend[] = R"lua(  keel.exec "send" { command = { "sh", "-c", "sleep 2; echo $PPID" },
    output = "json" },)lua";

Json Show(const KeelCli& keel, const std::string& id, const std::string& url) {
  ExitInfo shown = keel.Run({"show", id, "--events", "--json", "--db", url});
  INFO(shown.Describe());
  REQUIRE(shown.exit_code == 0);
  return Json::Parse(shown.out);
}

// Waits until every escalation of run `id` is done (and the run settled).
bool EscalatedAll(Db& db, const std::string& id, std::chrono::milliseconds limit) {
  return db.WaitFor(
      "SELECT (SELECT status FROM runs WHERE id = $1) <> 'running' AND EXISTS (SELECT 1 FROM "
      "escalations WHERE run_id = $1) AND NOT EXISTS (SELECT 1 FROM escalations WHERE "
      "run_id = $1 AND state <> 'done')",
      "t", limit, {id});
}

// The invariants of one escalation: started, finished and committed once.
void CheckOnce(Db& db, const std::string& id, int number) {
  const std::string node = "on_failure#" + std::to_string(number);
  CHECK(db.Scalar("SELECT count(*) FROM events WHERE run_id = $1 AND kind = "
                  "'escalation_started' AND data_json LIKE '%\"escalation\":' || $2 || '%'",
                  {id, std::to_string(number)}) == "1");
  CHECK(db.Scalar("SELECT count(*) FROM events WHERE run_id = $1 AND kind = "
                  "'escalation_finished' AND data_json LIKE '%\"escalation\":' || $2 || '%'",
                  {id, std::to_string(number)}) == "1");
  CHECK(db.Scalar("SELECT count(*) FROM claim_log WHERE run_id = $1 AND node = $2 AND "
                  "action = 'commit'",
                  {id, node}) == "1");
  // The commit's attempt is the last claim's.
  CHECK(db.Scalar("SELECT (SELECT attempt FROM claim_log WHERE run_id = $1 AND node = $2 AND "
                  "action = 'commit') = (SELECT attempt FROM claim_log WHERE run_id = $1 AND "
                  "node = $2 AND action = 'claim' ORDER BY id DESC LIMIT 1)",
                  {id, node}) == "t");
}

// One test's runs: a fresh database with a flow submitted to it, `keel` run
// from the flow's directory, and a connection to the database. For one test
// thread.
struct Escalating {
  // A `keel worker` on the database with lease `lease`.
  std::unique_ptr<Subprocess> Worker(const std::string& lease) {
    return keel.Start({"worker", "--db", url, "--lease", lease});
  }

  std::string url;
  TempDir dir;
  KeelCli keel{KEEL_BIN, dir.path()};
  std::vector<std::string> ids;  // the runs submitted, in order
  Db db;
};

// A fresh database for test `tag` with `flow` (written as flow.lua)
// submitted `runs` times, each submit given `args`; null (said in a MESSAGE)
// without a server.
std::unique_ptr<Escalating> Submitted(const std::string& tag, const std::string& flow, int runs = 1,
                                      const std::vector<std::string>& args = {}) {
  auto url = FreshDbOrSkip(tag);
  if (!url) return nullptr;
  auto s = std::make_unique<Escalating>();
  s->url = *url;
  std::string file = s->dir.Write("flow.lua", flow);
  for (int i = 0; i < runs; ++i) s->ids.push_back(SubmitFile(s->keel, file, s->url, args));
  s->db = Connect(s->url);
  return s;
}

}  // namespace

TEST_CASE("a submitted run that fails escalates once on a worker" * doctest::timeout(60)) {
  auto s = Submitted("esc_submit", Flow(kSend), 1, {"-p", "channel=ops"});
  if (!s) return;
  const std::string id = s->ids[0];
  auto worker = s->Worker("2s");
  bool done = EscalatedAll(s->db, id, 30s);
  StopWorkers({worker.get()});
  REQUIRE(done);

  Json show = Show(s->keel, id, s->url);
  CHECK(show["status"].Str() == "failed");
  Json send = NodeEntry(show["nodes"], "on_failure#1/send");
  CHECK(send["status"].Str() == "succeeded");
  CHECK(send["output"]["node"].Str() == "work");
  CHECK(send["output"]["message"].Str() == "quota exceeded");
  CHECK(send["output"]["kind"].Str() == "permanent");
  CHECK(send["output"]["run"].Str() == id);
  CHECK(send["output"]["escalation"].Num() == 1);
  CHECK(send["output"]["params"].Str() == "ops");
  CHECK(send["output"]["error"].Str() == show["error"].Str());
  REQUIRE(show["escalations"].Size() == 1);
  CHECK(show["escalations"][0]["workflow"].Str() == "notify");
  CHECK(show["escalations"][0]["status"].Str() == "succeeded");
  CheckOnce(s->db, id, 1);

  ExitInfo text = s->keel.Run({"show", id, "--db", s->url});
  CHECK(text.out.find("escalated notify (on_failure#1): succeeded") != std::string::npos);

  // `keel resume` runs the failed node again on workers (itself among
  // them); failing again, the run escalates again, as #2.
  ExitInfo resumed = s->keel.Run({"resume", id, "--db", s->url, "--json"});
  INFO(resumed.Describe());
  CHECK(resumed.exit_code == 1);
  Json report = Json::Parse(resumed.out);
  CHECK(report["escalation"]["workflow"].Str() == "notify");
  CHECK(report["escalation"]["status"].Str() == "succeeded");
  CheckOnce(s->db, id, 2);
  show = Show(s->keel, id, s->url);
  CHECK(NodeEntry(show["nodes"], "on_failure#2/send")["output"]["escalation"].Num() == 2);
  CHECK(show["escalations"].Size() == 2);
}

TEST_CASE("workers racing for escalations escalate each failed run once" * doctest::timeout(90)) {
  auto s = Submitted("esc_race", Flow(kSend), 4);
  if (!s) return;
  std::vector<std::unique_ptr<Subprocess>> workers;
  for (int i = 0; i < 3; ++i) workers.push_back(s->Worker("2s"));
  bool done = true;
  for (const std::string& id : s->ids) done = EscalatedAll(s->db, id, 30s) && done;
  StopWorkers(workers);
  REQUIRE(done);
  for (const std::string& id : s->ids) {
    CheckOnce(s->db, id, 1);
    CHECK(s->db.Scalar("SELECT count(*) FROM escalations WHERE run_id = $1", {id}) == "1");
    CHECK(s->db.Scalar("SELECT count(*) FROM nodes WHERE run_id = $1 AND node LIKE 'on_failure#%'",
                       {id}) == "1");
  }
}

TEST_CASE("a worker killed mid-escalation has it finished by another, recorded once" *
          doctest::timeout(90)) {
  auto s = Submitted("esc_kill", Flow(kSlowSend));
  if (!s) return;
  const std::string id = s->ids[0];
  auto first = s->Worker("1s");
  REQUIRE(
      s->db.WaitFor("SELECT count(*) FROM events WHERE run_id = $1 AND kind = "
                    "'escalation_started'",
                    "1", 30s, {id}));
  // Started: the run shows it escalating while its node runs.
  Json during = Show(s->keel, id, s->url);
  CHECK(during["status"].Str() == "failed");
  REQUIRE(during["escalations"].Size() == 1);
  CHECK(during["escalations"][0]["status"].Str() == "running");
  first->Kill();
  auto second = s->Worker("1s");
  bool done = EscalatedAll(s->db, id, 30s);
  StopWorkers({second.get()});
  REQUIRE(done);
  CheckOnce(s->db, id, 1);
  CHECK(s->db.Scalar("SELECT string_agg(action || ':' || attempt, ',' ORDER BY id) FROM claim_log "
                     "WHERE run_id = $1 AND node = 'on_failure#1'",
                     {id}) == "claim:1,claim:2,commit:2");
  CHECK(
      s->db.Scalar("SELECT output_json FROM nodes WHERE run_id = $1 AND node = 'on_failure#1/send'",
                   {id}) == std::to_string(second->pid()));
  CHECK(s->db.Scalar("SELECT status FROM runs WHERE id = $1", {id}) == "failed");
}

TEST_CASE("a worker paused past its lease mid-escalation records nothing of it" *
          doctest::timeout(90)) {
  auto s = Submitted("esc_pause", Flow(kSlowSend));
  if (!s) return;
  const std::string id = s->ids[0];
  auto paused = s->Worker("1s");
  REQUIRE(
      s->db.WaitFor("SELECT started_at > 0 FROM escalations WHERE run_id = $1", "t", 30s, {id}));
  kill(paused->pid(), SIGSTOP);
  auto other = s->Worker("1s");
  bool done = EscalatedAll(s->db, id, 30s);
  kill(paused->pid(), SIGCONT);
  // The paused worker's escalation ends (stopped, or its late commit
  // discarded) well within its 2 s sleep and a few sweeps.
  std::this_thread::sleep_for(3s);
  StopWorkers({paused.get(), other.get()});
  REQUIRE(done);
  CheckOnce(s->db, id, 1);
  CHECK(
      s->db.Scalar("SELECT output_json FROM nodes WHERE run_id = $1 AND node = 'on_failure#1/send'",
                   {id}) == std::to_string(other->pid()));
}

TEST_CASE("an escalation that fails does not loop; a run that succeeds does not escalate" *
          doctest::timeout(60)) {
  // The escalation fails; its workflow's own on_failure is for its own runs.
  auto s = Submitted("esc_noloop", R"lua(local keel = require "keel"
keel.workflow "page" { keel.fn "p" { run = function() return 1 end } }
keel.workflow "notify" {
  on_failure = "page",
  keel.fn "send" { run = function() keel.fail{ kind = "permanent", message = "no chat" } end },
}
return keel.workflow "main" {
  on_failure = "notify",
  keel.fn "work" { run = function() keel.fail{ kind = "permanent", message = "boom" } end },
}
)lua");
  if (!s) return;
  const std::string failed_id = s->ids[0];
  std::string fine = s->dir.Write("fine.lua", R"lua(local keel = require "keel"
keel.workflow "notify" { keel.fn "send" { run = function() return 1 end } }
return keel.workflow "main" { on_failure = "notify", keel.fn "work" { run = function() return 2 end } }
)lua");
  std::string fine_id = SubmitFile(s->keel, fine, s->url);
  auto worker = s->Worker("2s");
  bool done = EscalatedAll(s->db, failed_id, 30s) &&
              s->db.WaitFor("SELECT status FROM runs WHERE id = $1", "succeeded", 30s, {fine_id});
  // Time for a loop to show, were there one.
  std::this_thread::sleep_for(1s);
  StopWorkers({worker.get()});
  REQUIRE(done);
  CheckOnce(s->db, failed_id, 1);
  Json show = Show(s->keel, failed_id, s->url);
  CHECK(show["status"].Str() == "failed");
  REQUIRE(show["escalations"].Size() == 1);
  CHECK(show["escalations"][0]["status"].Str() == "failed");
  CHECK(show["escalations"][0]["error"].Str().find("no chat") != std::string::npos);
  CHECK(s->db.Scalar("SELECT count(*) FROM escalations") == "1");
  CHECK(s->db.Scalar("SELECT count(*) FROM nodes WHERE run_id = $1 AND node LIKE 'on_failure#%'",
                     {failed_id}) == "1");
  CHECK(s->db.Scalar("SELECT count(*) FROM events WHERE run_id = $1 AND kind LIKE 'escalation%'",
                     {fine_id}) == "0");
}

}  // namespace keel::testing
