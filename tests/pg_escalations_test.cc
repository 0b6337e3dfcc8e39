// Escalations of distributed runs against a real PostgreSQL server
// (store/postgres/pg_escalations.h): made due once by the commit that
// settles a run failed, claimed past a lapsed lease, started once, finished
// only by the current claim, handed back; a resumed run that fails again
// makes the next one due.

#include "store/postgres/pg_escalations.h"

#include <doctest/doctest.h>

#include "store/postgres/pg_node_queue.h"
#include "store/postgres/pg_schema.h"
#include "tests/fakes/node_spec.h"
#include "tests/support/pg_database.h"

namespace keel::pg {
namespace {

using testing::Node;

// A fresh, migrated database, or null (said in a MESSAGE) without a server.
std::unique_ptr<Connection> NewDb(const std::string& tag) {
  auto url = test::FreshPgDatabase(tag);
  if (!url) {
    MESSAGE("no PostgreSQL server");
    return nullptr;
  }
  auto conn = Connection::Open(*url);
  REQUIRE_MESSAGE(conn.ok(), conn.status().ToString());
  Status migrated = Migrate(**conn);
  REQUIRE_MESSAGE(migrated.ok(), migrated.ToString());
  return std::move(*conn);
}

// Workflow "main": "a", then "b"; escalates to "notify".
WorkflowSpec Main() {
  WorkflowSpec wf;
  wf.name = "main";
  wf.on_failure = "notify";
  wf.nodes = {Node("a", {}, nullptr), Node("b", {"a"}, nullptr)};
  return wf;
}

RunRecord NewRun(const WorkflowSpec& wf) {
  RunRecord run;
  run.id = "r1";
  run.workflow = wf.name;
  run.script_path = "/w.lua";
  run.script_sha256 = "00";
  run.script_text = "-- w";
  run.created_at = run.updated_at = run.heartbeat = 1000;
  run.node_count = static_cast<int>(wf.nodes.size());
  return run;
}

std::string Scalar(Connection& conn, const std::string& sql, const Params& params = {}) {
  auto rows = conn.Exec(sql, params, "test query");
  REQUIRE_MESSAGE(rows.ok(), rows.status().ToString());
  REQUIRE(rows->size() == 1);
  return rows->str(0, 0);
}

// Claims node "a" for worker `worker` and commits it failed ("boom").
CommitOutcome FailA(Connection& conn, const WorkflowSpec& wf, const std::string& worker) {
  auto claims = ClaimReady(conn, worker, 5);
  REQUIRE(claims.ok());
  REQUIRE(claims->size() == 1);
  NodeCommit commit;
  commit.claim = (*claims)[0];
  commit.worker = worker;
  NodeRecord rec;
  rec.run_id = "r1";
  rec.node = "a";
  rec.status = NodeStatus::kFailed;
  rec.attempts = 3;
  rec.error_kind = ErrorKind::kPermanent;
  rec.error_message = "boom";
  commit.records.push_back(rec);
  auto done = CommitNode(conn, &wf, commit, 1002);
  REQUIRE_MESSAGE(done.ok(), done.status().ToString());
  return *done;
}

std::optional<EscalationClaim> Claim(Connection& conn, const std::string& worker) {
  auto claim = ClaimEscalation(conn, worker);
  REQUIRE_MESSAGE(claim.ok(), claim.status().ToString());
  return *claim;
}

NodeRecord EscalationNode(const std::string& output) {
  NodeRecord rec;
  rec.run_id = "r1";
  rec.node = "on_failure#1/send";
  rec.status = NodeStatus::kSucceeded;
  rec.attempts = 1;
  rec.output_json = output;
  return rec;
}

EventRecord Event(const char* kind) { return {"r1", 0, 1003, "", kind, "{\"escalation\":1}"}; }

}  // namespace

TEST_CASE("a failed end is escalated once, by the current claim" * doctest::timeout(60)) {
  auto conn = NewDb("esc_fence");
  if (!conn) return;
  WorkflowSpec wf = Main();
  REQUIRE(SubmitRun(*conn, NewRun(wf), wf, 1000).ok());
  REQUIRE(RegisterWorker(*conn, "slow", Owner{1, "h", 0}, 60).ok());
  REQUIRE(RegisterWorker(*conn, "fast", Owner{2, "h", 0}, 60).ok());
  CHECK_FALSE(Claim(*conn, "slow"));  // nothing is due while the run runs

  CommitOutcome failed = FailA(*conn, wf, "slow");
  CHECK(failed.run_settled);
  CHECK(failed.run_status == RunStatus::kFailed);
  CHECK(failed.escalation_due);
  CHECK(Scalar(*conn,
               "SELECT number || ' ' || workflow || ' ' || state || ' ' || error FROM "
               "escalations") == "1 notify due a: permanent: boom");
  // ctx.failure as the records said: the node, its kind, message and attempts.
  std::string failure = Scalar(*conn, "SELECT failure_json FROM escalations");
  CHECK(failure.find("\"run_id\":\"r1\"") != std::string::npos);
  CHECK(failure.find("\"escalation\":1") != std::string::npos);
  CHECK(failure.find("\"node\":\"a\",\"kind\":\"permanent\",\"message\":\"boom\","
                     "\"attempts\":3") != std::string::npos);
  CHECK(failure.find("\"failed\":[{\"node\":\"a\"") != std::string::npos);

  auto slow = Claim(*conn, "slow");
  REQUIRE(slow);
  CHECK(slow->attempt == 1);
  CHECK(slow->workflow == "notify");
  CHECK(slow->failure_json == failure);
  CHECK_FALSE(Claim(*conn, "fast"));  // "slow" holds it within its lease
  // "slow" stops heartbeating past its lease: "fast" takes the escalation.
  REQUIRE(conn->Exec("UPDATE workers SET lease_s = 0.05, heartbeat = heartbeat - "
                     "interval '1 second' WHERE id = 'slow'",
                     {}, "ageing")
              .ok());
  auto fast = Claim(*conn, "fast");
  REQUIRE(fast);
  CHECK(fast->attempt == 2);

  auto late_start = StartEscalation(*conn, *slow, "slow", Event("escalation_started"));
  REQUIRE(late_start.ok());
  CHECK_FALSE(*late_start);
  for (int i = 0; i < 2; ++i) {  // started once, however often asked
    auto started = StartEscalation(*conn, *fast, "fast", Event("escalation_started"));
    REQUIRE(started.ok());
    CHECK(*started);
  }
  CHECK(Scalar(*conn, "SELECT count(*) FROM events WHERE kind = 'escalation_started'") == "1");

  auto late = FinishEscalation(*conn, *slow, "slow", {EscalationNode("\"slow\"")},
                               {Event("escalation_finished")});
  REQUIRE(late.ok());
  CHECK_FALSE(*late);
  CHECK(Scalar(*conn, "SELECT count(*) FROM nodes WHERE node LIKE 'on_failure%'") == "0");
  auto won = FinishEscalation(*conn, *fast, "fast", {EscalationNode("\"fast\"")},
                              {Event("escalation_finished")});
  REQUIRE(won.ok());
  CHECK(*won);
  // Finishing it again (an answer that was lost) writes nothing more.
  auto again = FinishEscalation(*conn, *fast, "fast", {EscalationNode("\"again\"")},
                                {Event("escalation_finished")});
  REQUIRE(again.ok());
  CHECK(*again);
  CHECK(Scalar(*conn, "SELECT output_json FROM nodes WHERE node = 'on_failure#1/send'") ==
        "\"fast\"");
  CHECK(Scalar(*conn, "SELECT count(*) FROM events WHERE kind = 'escalation_finished'") == "1");
  CHECK(Scalar(*conn, "SELECT state FROM escalations") == "done");
  CHECK_FALSE(Claim(*conn, "fast"));
  CHECK(Scalar(*conn,
               "SELECT string_agg(action || ':' || worker_id || ':' || attempt, ',' ORDER BY id) "
               "FROM claim_log WHERE node = 'on_failure#1'") ==
        "claim:slow:1,claim:fast:2,superseded:slow:1,commit:fast:2");
  auto open = EscalationOpen(*conn, "r1");
  REQUIRE(open.ok());
  CHECK_FALSE(*open);
}

TEST_CASE(
    "a handed-back escalation is claimed again; a resumed run that fails again makes "
    "the next one due" *
    doctest::timeout(60)) {
  auto conn = NewDb("esc_resume");
  if (!conn) return;
  WorkflowSpec wf = Main();
  REQUIRE(SubmitRun(*conn, NewRun(wf), wf, 1000).ok());
  REQUIRE(RegisterWorker(*conn, "w", Owner{1, "h", 0}, 60).ok());
  FailA(*conn, wf, "w");
  auto first = Claim(*conn, "w");
  REQUIRE(first);
  REQUIRE(HandBackEscalation(*conn, "w", *first).ok());
  auto open = EscalationOpen(*conn, "r1");
  REQUIRE(open.ok());
  CHECK(*open);
  auto second = Claim(*conn, "w");
  REQUIRE(second);
  CHECK(second->attempt == 2);
  auto done = FinishEscalation(*conn, *second, "w", {}, {Event("escalation_finished")});
  REQUIRE(done.ok());
  CHECK(*done);

  REQUIRE(ResumeRun(*conn, "r1", wf, 1010).ok());
  CHECK(Scalar(*conn, "SELECT count(*) FROM escalations") == "1");
  CommitOutcome failed = FailA(*conn, wf, "w");
  CHECK(failed.escalation_due);
  CHECK(Scalar(*conn,
               "SELECT string_agg(number || ':' || state, ',' ORDER BY number) FROM "
               "escalations") == "1:done,2:due");
  CHECK(Scalar(*conn, "SELECT failure_json FROM escalations WHERE number = 2")
            .find("\"escalation\":2") != std::string::npos);
}

TEST_CASE("a run whose workflow has no on_failure has nothing due when it fails" *
          doctest::timeout(60)) {
  auto conn = NewDb("esc_none");
  if (!conn) return;
  WorkflowSpec wf = Main();
  wf.on_failure.clear();
  REQUIRE(SubmitRun(*conn, NewRun(wf), wf, 1000).ok());
  REQUIRE(RegisterWorker(*conn, "w", Owner{1, "h", 0}, 60).ok());
  CommitOutcome failed = FailA(*conn, wf, "w");
  CHECK(failed.run_settled);
  CHECK_FALSE(failed.escalation_due);
  CHECK(Scalar(*conn, "SELECT count(*) FROM escalations") == "0");
}

}  // namespace keel::pg
