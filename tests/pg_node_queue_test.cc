// The node queue of distributed runs against a real PostgreSQL server:
// claims from many threads, fenced commits, expired leases, chains.

#include "store/postgres/pg_node_queue.h"

#include <doctest/doctest.h>

#include <map>
#include <set>
#include <thread>

#include "engine/mutex.h"
#include "store/postgres/pg_rows.h"
#include "store/postgres/pg_schema.h"
#include "tests/fakes/node_spec.h"
#include "tests/support/pg_database.h"

namespace keel::pg {
namespace {

using testing::Node;

std::unique_ptr<Connection> OpenDb(const std::string& url) {
  auto conn = Connection::Open(url);
  REQUIRE_MESSAGE(conn.ok(), conn.status().ToString());
  return std::move(*conn);
}

std::optional<std::string> NewDb(const std::string& tag) {
  auto url = test::FreshPgDatabase(tag);
  if (!url) return std::nullopt;
  auto conn = OpenDb(*url);
  Status migrated = Migrate(*conn);
  REQUIRE_MESSAGE(migrated.ok(), migrated.ToString());
  return url;
}

RunRecord NewRun(const std::string& id, const WorkflowSpec& wf) {
  RunRecord run;
  run.id = id;
  run.workflow = wf.name;
  run.script_path = "/w.lua";
  run.script_sha256 = "00";
  run.script_text = "-- w";
  run.created_at = run.updated_at = run.heartbeat = 1000;
  run.node_count = static_cast<int>(wf.nodes.size());
  return run;
}

// A fresh database with run "r1" of `wf` submitted, and worker "w"
// registered when asked; null (said in a MESSAGE) without a server.
std::unique_ptr<Connection> Submitted(const std::string& tag, const WorkflowSpec& wf,
                                      bool worker) {
  auto url = NewDb(tag);
  if (!url) {
    MESSAGE("no PostgreSQL server");
    return nullptr;
  }
  auto conn = OpenDb(*url);
  REQUIRE(SubmitRun(*conn, NewRun("r1", wf), wf, 1000).ok());
  if (worker) REQUIRE(RegisterWorker(*conn, "w", Owner{1, "h", 0}, 60).ok());
  return conn;
}

NodeCommit Succeeded(const NodeClaim& claim, const std::string& worker, const std::string& out,
                     int claim_children = 0) {
  NodeCommit c;
  c.claim = claim;
  c.worker = worker;
  NodeRecord rec;
  rec.run_id = claim.run_id;
  rec.node = claim.node;
  rec.status = NodeStatus::kSucceeded;
  rec.attempts = 1;
  rec.output_json = out;
  rec.started_at = 1001;
  rec.finished_at = 1002;
  c.records.push_back(rec);
  c.events.push_back({claim.run_id, 0, 1002, claim.node, "node_succeeded", "{}"});
  c.claim_next = claim_children;
  return c;
}

std::string Scalar(Connection& conn, const std::string& sql, const Params& params = {}) {
  auto rows = conn.Exec(sql, params, "test query");
  REQUIRE_MESSAGE(rows.ok(), rows.status().ToString());
  REQUIRE(rows->size() == 1);
  return rows->str(0, 0);
}

TEST_CASE("claims from four threads never take a node twice" * doctest::timeout(120)) {
  auto url = NewDb("queue_claims");
  if (!url) {
    MESSAGE("no PostgreSQL server");
    return;
  }
  WorkflowSpec wf;
  wf.name = "wide";
  for (int i = 0; i < 200; ++i) wf.nodes.push_back(Node("n" + std::to_string(i), {}, nullptr));
  auto conn = OpenDb(*url);
  REQUIRE(SubmitRun(*conn, NewRun("r1", wf), wf, 1000).ok());
  CHECK(Scalar(*conn, "SELECT count(*) FROM node_queue WHERE state = 'ready'") == "200");

  Mutex mu;
  std::vector<NodeClaim> all;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      auto c = Connection::Open(*url);
      if (!c.ok()) return;
      std::string worker = "w" + std::to_string(t);
      if (!RegisterWorker(**c, worker, Owner{t, "h", 0}, 60).ok()) return;
      for (;;) {
        auto got = ClaimReady(**c, worker, 3);
        if (!got.ok() || got->empty()) return;
        MutexLock lock(&mu);
        all.insert(all.end(), got->begin(), got->end());
      }
    });
  }
  for (auto& t : threads) t.join();
  std::set<std::string> names;
  for (const auto& c : all) {
    CHECK(c.attempt == 1);
    names.insert(c.node);
  }
  CHECK(all.size() == 200);
  CHECK(names.size() == 200);
  CHECK(Scalar(*conn, "SELECT count(*) FROM claim_log WHERE action = 'claim'") == "200");
}

TEST_CASE("a superseded claim's commit changes nothing" * doctest::timeout(60)) {
  WorkflowSpec wf;
  wf.name = "chain";
  wf.nodes = {Node("a", {}, nullptr), Node("b", {"a"}, nullptr)};
  auto conn = Submitted("queue_fence", wf, /*worker=*/false);
  if (!conn) return;
  REQUIRE(RegisterWorker(*conn, "slow", Owner{1, "h", 0}, 0.05).ok());
  REQUIRE(RegisterWorker(*conn, "fast", Owner{2, "h", 0}, 60).ok());
  auto first = ClaimReady(*conn, "slow", 5);
  REQUIRE(first.ok());
  REQUIRE(first->size() == 1);
  CHECK((*first)[0].attempt == 1);

  // Nothing is re-queued while the lease holds; then "slow" misses its heartbeat.
  REQUIRE(WorkerHeartbeat(*conn, "slow").ok());
  REQUIRE(conn->Exec("UPDATE workers SET heartbeat = heartbeat - interval '1 second' "
                     "WHERE id = 'slow'",
                     {}, "ageing")
              .ok());
  auto requeued = RequeueExpired(*conn);
  REQUIRE(requeued.ok());
  CHECK(*requeued == 1);
  auto second = ClaimReady(*conn, "fast", 5);
  REQUIRE(second.ok());
  REQUIRE(second->size() == 1);
  CHECK((*second)[0].attempt == 2);

  auto late = CommitNode(*conn, &wf, Succeeded((*first)[0], "slow", "\"slow\""), 1003);
  REQUIRE(late.ok());
  CHECK(late->superseded);
  CHECK(Scalar(*conn, "SELECT count(*) FROM nodes") == "0");
  CHECK(Scalar(*conn, "SELECT count(*) FROM node_queue WHERE node = 'b'") == "0");
  CHECK(Scalar(*conn, "SELECT last_seq FROM runs") == "1");  // run_started alone

  auto won = CommitNode(*conn, &wf, Succeeded((*second)[0], "fast", "\"fast\""), 1004);
  REQUIRE(won.ok());
  CHECK_FALSE(won->superseded);
  CHECK(Scalar(*conn, "SELECT output_json FROM nodes WHERE node = 'a'") == "\"fast\"");
  CHECK(Scalar(*conn, "SELECT state FROM node_queue WHERE node = 'b'") == "ready");
  // A second commit of the same claim is refused too: the node is done.
  auto again = CommitNode(*conn, &wf, Succeeded((*second)[0], "fast", "\"again\""), 1005);
  REQUIRE(again.ok());
  CHECK(again->superseded);
  CHECK(Scalar(*conn, "SELECT output_json FROM nodes WHERE node = 'a'") == "\"fast\"");
  CHECK(Scalar(*conn,
               "SELECT string_agg(action || ':' || worker_id || ':' || attempt, ',' ORDER BY id) "
               "FROM claim_log WHERE node = 'a'") ==
        "claim:slow:1,requeue:slow:1,claim:fast:2,superseded:slow:1,commit:fast:2,"
        "superseded:fast:2");
}

TEST_CASE("leaf commits take one round trip each; a run whose settling step was lost is "
          "settled by IdleRuns" * doctest::timeout(60)) {
  WorkflowSpec wf;
  wf.name = "wide";
  wf.nodes = {Node("a", {}, nullptr), Node("b", {}, nullptr), Node("c", {}, nullptr)};
  auto conn = Submitted("queue_leaves", wf, /*worker=*/true);
  if (!conn) return;
  REQUIRE(RegisterWorker(*conn, "v", Owner{2, "h", 0}, 60).ok());
  auto claims = ClaimReady(*conn, "w", 3);
  REQUIRE(claims.ok());
  REQUIRE(claims->size() == 3);
  std::map<std::string, NodeClaim> by_node;
  for (const NodeClaim& c : *claims) by_node[c.node] = c;

  // A leaf's commit by a worker that does not hold the claim (or at an
  // attempt that is not current) is refused by the fence, writing nothing.
  auto foreign = CommitNode(*conn, &wf, Succeeded(by_node["a"], "v", "\"v\""), 1001);
  REQUIRE(foreign.ok());
  CHECK(foreign->superseded);
  NodeClaim stale = by_node["a"];
  stale.attempt = 7;
  auto old = CommitNode(*conn, &wf, Succeeded(stale, "w", "\"old\""), 1001);
  REQUIRE(old.ok());
  CHECK(old->superseded);
  CHECK(Scalar(*conn, "SELECT count(*) FROM nodes") == "0");
  CHECK(Scalar(*conn, "SELECT last_seq FROM runs") == "1");

  auto a = CommitNode(*conn, &wf, Succeeded(by_node["a"], "w", "1"), 1002);
  REQUIRE(a.ok());
  CHECK_FALSE(a->superseded);
  CHECK_FALSE(a->run_settled);
  auto idle = IdleRuns(*conn);
  REQUIRE(idle.ok());
  CHECK(idle->empty());
  auto b = CommitNode(*conn, &wf, Succeeded(by_node["b"], "w", "2"), 1003);
  REQUIRE(b.ok());
  CHECK_FALSE(b->run_settled);
  CHECK(Scalar(*conn, "SELECT string_agg(seq::text, ',' ORDER BY seq) FROM events") == "1,2,3");

  // The last leaf's commit goes in, but its worker dies before the step
  // that settles the run: its queue row is done, the run still running.
  REQUIRE(conn->Exec("UPDATE node_queue SET state = 'done' WHERE node = 'c'", {}, "losing").ok());
  REQUIRE(conn->Exec("INSERT INTO nodes (run_id, node, status, attempts, output_json, "
                     "error_kind, error_message, started_at, finished_at) VALUES ('r1', 'c', "
                     "'succeeded', 1, '3', 'none', '', 1004, 1004)",
                     {}, "losing")
              .ok());
  idle = IdleRuns(*conn);
  REQUIRE(idle.ok());
  REQUIRE(idle->size() == 1);
  CHECK((*idle)[0] == "r1");
  auto settled = SettleIdleRun(*conn, wf, "r1", 1005);
  REQUIRE(settled.ok());
  CHECK(settled->settled);
  CHECK(settled->status == RunStatus::kSucceeded);
  CHECK(Scalar(*conn, "SELECT status || ' ' || finished_at FROM runs") == "succeeded 1005");
  CHECK(Scalar(*conn, "SELECT count(*) FROM node_queue") == "0");
  // Settling again finds nothing to do.
  auto again = SettleIdleRun(*conn, wf, "r1", 1006);
  REQUIRE(again.ok());
  CHECK_FALSE(again->settled);
  CHECK(Scalar(*conn, "SELECT count(*) FROM events WHERE kind = 'run_finished'") == "1");
}

TEST_CASE("a commit with no child to claim claims the oldest ready node of any run, in its "
          "own transaction" * doctest::timeout(60)) {
  // r1: a and c, then b after both; r2: x alone, queued after r1's nodes.
  WorkflowSpec wf;
  wf.name = "join";
  wf.nodes = {Node("a", {}, nullptr), Node("c", {}, nullptr), Node("b", {"a", "c"}, nullptr)};
  WorkflowSpec lone;
  lone.name = "lone";
  lone.nodes = {Node("x", {}, nullptr)};
  auto conn = Submitted("queue_next", wf, /*worker=*/true);
  if (!conn) return;
  REQUIRE(SubmitRun(*conn, NewRun("r2", lone), lone, 1000).ok());
  auto claims = ClaimReady(*conn, "w", 1);
  REQUIRE(claims.ok());
  REQUIRE(claims->size() == 1);
  NodeClaim a = (*claims)[0];
  CHECK(a.node == "a");

  // a's dependent b waits for c: the commit (two round trips) claims c.
  auto after_a = CommitNode(*conn, &wf, Succeeded(a, "w", "1", 1), 1002);
  REQUIRE(after_a.ok());
  REQUIRE(after_a->claimed.size() == 1);
  NodeClaim c = after_a->claimed[0];
  CHECK(c.run_id == "r1");
  CHECK(c.node == "c");
  CHECK(c.attempt == 1);

  // A superseded commit claims nothing: x stays ready.
  NodeClaim stale = c;
  stale.attempt = 9;
  auto refused = CommitNode(*conn, &wf, Succeeded(stale, "w", "0", 1), 1003);
  REQUIRE(refused.ok());
  CHECK(refused->superseded);
  CHECK(refused->claimed.empty());
  CHECK(Scalar(*conn, "SELECT state FROM node_queue WHERE run_id = 'r2'") == "ready");

  // c's commit claims its child b.
  auto after_c = CommitNode(*conn, &wf, Succeeded(c, "w", "2", 1), 1004);
  REQUIRE(after_c.ok());
  REQUIRE(after_c->claimed.size() == 1);
  CHECK(after_c->claimed[0].node == "b");
  // A refused leaf's commit claims nothing either: the claim is in its
  // transaction.
  NodeClaim stale_leaf = after_c->claimed[0];
  stale_leaf.attempt = 9;
  auto refused_leaf = CommitNode(*conn, &wf, Succeeded(stale_leaf, "w", "0", 2), 1004);
  REQUIRE(refused_leaf.ok());
  CHECK(refused_leaf->superseded);
  CHECK(refused_leaf->claimed.empty());
  CHECK(Scalar(*conn, "SELECT state FROM node_queue WHERE run_id = 'r2'") == "ready");
  // b, a leaf and r1's last node, commits in one round trip, claims r2's x
  // in the same transaction and ends r1.
  auto after_b = CommitNode(*conn, &wf, Succeeded(after_c->claimed[0], "w", "3", 2), 1005);
  REQUIRE(after_b.ok());
  CHECK_FALSE(after_b->superseded);
  CHECK(after_b->run_settled);
  CHECK(after_b->run_status == RunStatus::kSucceeded);
  REQUIRE(after_b->claimed.size() == 1);
  NodeClaim x = after_b->claimed[0];
  CHECK(x.run_id == "r2");
  CHECK(x.node == "x");
  CHECK(x.attempt == 1);
  CHECK(Scalar(*conn, "SELECT state || ' ' || worker_id || ' ' || attempt FROM node_queue "
                      "WHERE run_id = 'r2'") == "claimed w 1");
  CHECK(Scalar(*conn, "SELECT string_agg(run_id || node || ':' || action, ',' ORDER BY id) "
                      "FROM claim_log") ==
        "r1a:claim,r1a:commit,r1c:claim,r1c:superseded,r1c:commit,r1b:claim,r1b:superseded,"
        "r1b:commit,r2x:claim");

  // x's commit, with nothing ready anywhere, claims nothing and ends r2.
  auto after_x = CommitNode(*conn, &lone, Succeeded(x, "w", "4", 1), 1006);
  REQUIRE(after_x.ok());
  CHECK(after_x->claimed.empty());
  CHECK(after_x->run_settled);
  CHECK(Scalar(*conn, "SELECT string_agg(status, ',' ORDER BY id) FROM runs") ==
        "succeeded,succeeded");
}

TEST_CASE("a commit claims the chain's next node and the last one finishes the run" *
          doctest::timeout(60)) {
  WorkflowSpec wf;
  wf.name = "chain";
  wf.nodes = {Node("a", {}, nullptr), Node("b", {"a"}, nullptr), Node("c", {"b"}, nullptr)};
  auto conn = Submitted("queue_chain", wf, /*worker=*/true);
  if (!conn) return;
  auto claims = ClaimReady(*conn, "w", 5);
  REQUIRE(claims.ok());
  REQUIRE(claims->size() == 1);
  NodeClaim claim = (*claims)[0];
  for (const char* next : {"b", "c"}) {
    auto done = CommitNode(*conn, &wf, Succeeded(claim, "w", "1", 4), 1002);
    REQUIRE(done.ok());
    CHECK_FALSE(done->superseded);
    REQUIRE(done->claimed.size() == 1);
    CHECK(done->claimed[0].node == next);
    CHECK(Scalar(*conn, "SELECT count(*) FROM node_queue WHERE state = 'ready'") == "0");
    claim = done->claimed[0];
  }
  auto last = CommitNode(*conn, &wf, Succeeded(claim, "w", "1", 4), 1003);
  REQUIRE(last.ok());
  CHECK(last->run_settled);
  CHECK(last->run_status == RunStatus::kSucceeded);
  CHECK(Scalar(*conn, "SELECT status || ' ' || finished_at FROM runs") == "succeeded 1003");
  CHECK(Scalar(*conn, "SELECT kind FROM events ORDER BY seq DESC LIMIT 1") == "run_finished");
  CHECK(Scalar(*conn, "SELECT count(*) FROM node_queue") == "0");

  // Run again from a: each node's claims go on from its last attempt, the
  // chained ones too, whose queue rows went when the run settled.
  Rerun rerun{"a", {"a", "b", "c"}};
  REQUIRE(ResumeRun(*conn, "r1", wf, 1004, &rerun).ok());
  claims = ClaimReady(*conn, "w", 5);
  REQUIRE(claims.ok());
  REQUIRE(claims->size() == 1);
  claim = (*claims)[0];
  CHECK(claim.attempt == 2);
  for (const char* next : {"b", "c"}) {
    auto done = CommitNode(*conn, &wf, Succeeded(claim, "w", "1", 4), 1005);
    REQUIRE(done.ok());
    CHECK_FALSE(done->superseded);
    REQUIRE(done->claimed.size() == 1);
    CHECK(done->claimed[0].node == next);
    CHECK(done->claimed[0].attempt == 2);
    claim = done->claimed[0];
  }
  auto rerun_last = CommitNode(*conn, &wf, Succeeded(claim, "w", "1", 4), 1006);
  REQUIRE(rerun_last.ok());
  CHECK(rerun_last->run_settled);
  CHECK(Scalar(*conn, "SELECT string_agg(node || attempt, ',' ORDER BY id) FROM claim_log "
                      "WHERE action = 'claim'") == "a1,b1,c1,a2,b2,c2");
}

TEST_CASE("a failed node cancels its dependents and fails the run" * doctest::timeout(60)) {
  WorkflowSpec wf;
  wf.name = "chain";
  wf.nodes = {Node("a", {}, nullptr), Node("b", {"a"}, nullptr), Node("c", {"b"}, nullptr)};
  auto conn = Submitted("queue_failure", wf, /*worker=*/true);
  if (!conn) return;
  auto claims = ClaimReady(*conn, "w", 5);
  REQUIRE(claims.ok());
  REQUIRE(claims->size() == 1);
  NodeCommit failed = Succeeded((*claims)[0], "w", "");
  failed.records[0].status = NodeStatus::kFailed;
  failed.records[0].output_json.reset();
  failed.records[0].error_kind = ErrorKind::kError;
  failed.records[0].error_message = "boom";
  auto done = CommitNode(*conn, &wf, failed, 1002);
  REQUIRE(done.ok());
  CHECK(done->run_settled);
  CHECK(done->run_status == RunStatus::kFailed);
  CHECK(Scalar(*conn, "SELECT status || ': ' || error FROM runs") == "failed: a: error: boom");
  CHECK(Scalar(*conn, "SELECT string_agg(node || ' ' || status, ',' ORDER BY ord) FROM nodes") ==
        "a failed,b cancelled,c cancelled");
  CHECK(Scalar(*conn, "SELECT error_message FROM nodes WHERE node = 'b'") ==
        "dependency 'a' failed");
}

TEST_CASE("inner records are written under a claim until it is superseded" *
          doctest::timeout(60)) {
  WorkflowSpec wf;
  wf.name = "map";
  wf.nodes = {Node("m", {}, nullptr)};
  auto conn = Submitted("queue_inner", wf, /*worker=*/true);
  if (!conn) return;
  auto claims = ClaimReady(*conn, "w", 1);
  REQUIRE(claims.ok());
  REQUIRE(claims->size() == 1);
  NodeRecord item;
  item.run_id = "r1";
  item.node = "m[1]";
  item.status = NodeStatus::kSucceeded;
  item.output_json = "1";
  auto written = WriteUnderClaim(*conn, (*claims)[0], "w", {item},
                                 {{"r1", 0, 1001, "m[1]", "node_succeeded", "{}"}});
  REQUIRE(written.ok());
  CHECK(*written);
  CHECK(Scalar(*conn, "SELECT output_json FROM nodes WHERE node = 'm[1]'") == "1");
  // Another worker's name, or the claim re-queued: refused, nothing written.
  item.node = "m[2]";
  auto stranger = WriteUnderClaim(*conn, (*claims)[0], "other", {item}, {});
  REQUIRE(stranger.ok());
  CHECK_FALSE(*stranger);
  // The worker's process is gone: its row goes, and its claim is re-queued.
  auto reaped = ReapDeadWorkers(*conn, "h", [](const Owner& o) { return o.pid != 1; });
  REQUIRE(reaped.ok());
  CHECK(*reaped == 1);
  auto requeued = RequeueExpired(*conn);
  REQUIRE(requeued.ok());
  CHECK(*requeued == 1);
  auto late = WriteUnderClaim(*conn, (*claims)[0], "w", {item}, {});
  REQUIRE(late.ok());
  CHECK_FALSE(*late);
  CHECK(Scalar(*conn, "SELECT count(*) FROM nodes") == "1");
  CHECK(Scalar(*conn, "SELECT last_seq FROM runs") == "2");
}

}  // namespace
}  // namespace keel::pg
