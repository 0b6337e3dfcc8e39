// PostgresStore against a real server (tests/support/pg_server.sh): open
// errors, group commit, queue order and exact round trips, claims and epoch
// fencing between two stores, lost connections mid-queue, and a database
// that refuses writes.

#include "store/postgres/pg_store.h"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "engine/process_owner.h"
#include "store/postgres/pg_connection.h"
#include "tests/support/commit_cutter.h"
#include "tests/support/pg_database.h"
#include "tests/support/store_records.h"

namespace keel {
namespace {

using test::FreshPgDatabase;
using test::PgDatabaseUrl;
using test::PgServerUrl;

using testing::MakeNode;
using testing::MakeRun;

EventRecord MakeEvent(const std::string& run_id, const std::string& data) {
  return EventRecord{run_id, 0, 3.0, "", "e", data};
}

std::unique_ptr<PostgresStore> OpenStore(const std::string& url, double stall_timeout = 30) {
  PostgresStoreOptions options;
  options.stall_timeout = stall_timeout;
  auto store = PostgresStore::Open(url, options);
  REQUIRE_MESSAGE(store.ok(), store.status().ToString());
  return std::move(store).value();
}

std::unique_ptr<pg::Connection> Admin(const std::string& url) {
  auto conn = pg::Connection::Open(url);
  REQUIRE_MESSAGE(conn.ok(), conn.status().ToString());
  return std::move(conn).value();
}

void Sql(pg::Connection& conn, const std::string& sql) {
  auto done = conn.Exec(sql, {}, "test");
  REQUIRE_MESSAGE(done.ok(), done.status().ToString());
}

int64_t Count(pg::Connection& conn, const std::string& sql) {
  auto rows = conn.Exec(sql, {}, "test");
  REQUIRE_MESSAGE(rows.ok(), rows.status().ToString());
  return rows->int64(0, 0);
}

// Ends every other connection to the database `name` (the store's);
// returns how many.
int64_t TerminateOthers(pg::Connection& admin, const std::string& name) {
  auto done = admin.Exec("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                         "WHERE datname = $1 AND pid <> pg_backend_pid()",
                         {name}, "terminating connections");
  REQUIRE_MESSAGE(done.ok(), done.status().ToString());
  return done->int64(0, 0);
}

std::string DbNameOf(const std::string& url) { return url.substr(url.rfind('/') + 1); }

// `url` with a password in it, which no message may show.
std::string WithPassword(const std::string& url) {
  size_t at = url.find('@');
  return url.substr(0, at) + ":s3cret" + url.substr(at);
}

auto kDead = [](const Owner&, double) { return false; };


TEST_CASE("open fails clearly, naming the URL without its password" * doctest::timeout(60)) {
  auto server = PgServerUrl();
  if (!server) {
    MESSAGE("no PostgreSQL server");
    return;
  }
  SUBCASE("a malformed URL") {
    auto store = PostgresStore::Open("postgresql://keel:s3cret@[::1/x", {});
    REQUIRE_FALSE(store.ok());
    CHECK(store.status().kind() == ErrorKind::kPermanent);
    CHECK(store.status().message().find("s3cret") == std::string::npos);
    CHECK(store.status().message().find("postgresql://keel:***@") != std::string::npos);
  }
  SUBCASE("a port nothing listens on, after a short wait") {
    const auto started = std::chrono::steady_clock::now();
    auto store = PostgresStore::Open("postgresql://keel:s3cret@127.0.0.1:1/x", {});
    REQUIRE_FALSE(store.ok());
    CHECK(store.status().kind() == ErrorKind::kPermanent);
    CHECK(store.status().message().find("s3cret") == std::string::npos);
    CHECK(store.status().message().find("127.0.0.1:1") != std::string::npos);
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(20));
  }
  SUBCASE("a missing database") {
    auto store = PostgresStore::Open(WithPassword(PgDatabaseUrl(*server, "no_such_db_here")), {});
    REQUIRE_FALSE(store.ok());
    CHECK(store.status().kind() == ErrorKind::kPermanent);
    CHECK(store.status().message().find("no_such_db_here") != std::string::npos);
    CHECK(store.status().message().find("s3cret") == std::string::npos);
  }
  SUBCASE("another program's database") {
    auto url = FreshPgDatabase("foreign");
    Sql(*Admin(*url), "CREATE TABLE runs (id integer)");
    auto store = PostgresStore::Open(*url, {});
    REQUIRE_FALSE(store.ok());
    CHECK(store.status().kind() == ErrorKind::kPermanent);
    CHECK(store.status().message().find("not a keel database") != std::string::npos);
    auto exists = PostgresStore::Exists(*url);
    CHECK_FALSE(exists.ok());
  }
  SUBCASE("a newer schema") {
    auto url = FreshPgDatabase("newer");
    OpenStore(*url).reset();
    Sql(*Admin(*url), "INSERT INTO keel_schema VALUES (99, 0)");
    auto store = PostgresStore::Open(*url, {});
    REQUIRE_FALSE(store.ok());
    CHECK(store.status().kind() == ErrorKind::kPermanent);
    CHECK(store.status().message().find("newer") != std::string::npos);
  }
  SUBCASE("no schema: Exists says so, and Open may not create one") {
    auto url = FreshPgDatabase("empty");
    auto exists = PostgresStore::Exists(*url);
    REQUIRE(exists.ok());
    CHECK_FALSE(*exists);
    PostgresStoreOptions options;
    options.create_schema = false;
    CHECK_FALSE(PostgresStore::Open(*url, options).ok());
    OpenStore(*url).reset();
    exists = PostgresStore::Exists(*url);
    REQUIRE(exists.ok());
    CHECK(*exists);
  }
}

TEST_CASE("records round-trip exactly, in queue order" * doctest::timeout(60)) {
  auto url = FreshPgDatabase("roundtrip");
  if (!url) {
    MESSAGE("no PostgreSQL server");
    return;
  }
  auto store = OpenStore(*url);
  RunRecord run = MakeRun("r1");
  run.created_at = 1764900000.123456789;
  run.params_json = R"({"s":"héllo ✓"})";
  run.modules = {{"util", "/tmp/util.lua", "ab", "return {}"}};
  REQUIRE(store->CreateRun(run).ok());
  NodeRecord b = MakeNode("r1", "b");
  b.started_at = 0.1 + 0.2;
  b.finished_at = 1e-300;
  b.output_json = R"({"x":"\u0000 ✓"})";
  store->SaveNode(b);
  store->SaveNode(MakeNode("r1", "a"));
  NodeRecord failed = MakeNode("r1", "c");
  failed.status = NodeStatus::kFailed;
  failed.output_json.reset();
  failed.error_kind = ErrorKind::kTransient;
  failed.error_message = R"(a "quoted" \ {brace}, NULL)";
  store->FinishNode(failed, EventRecord{"r1", 0, 4.25, "c", "node_failed", "{}"});
  store->AppendEvent(EventRecord{"r1", 0, 5, "", "NULL", R"({"s":"\"{,}\\"})"});
  b.attempts = 2;
  store->SaveNode(b);  // replaced in place: keeps its first-insert place
  store->FinishRun("r1", RunStatus::kFailed, "c failed", 9.5);
  REQUIRE(store->Flush().ok());

  auto got = store->GetRun("r");  // a unique prefix
  REQUIRE(got.ok());
  CHECK(got->created_at == run.created_at);
  CHECK(got->params_json == run.params_json);
  CHECK(got->status == RunStatus::kFailed);
  CHECK(got->error == "c failed");
  CHECK(got->finished_at == 9.5);
  CHECK(got->epoch == 1);
  auto nodes = store->GetNodes("r1");
  REQUIRE(nodes.ok());
  REQUIRE(nodes->size() == 3);
  CHECK((*nodes)[0].node == "b");
  CHECK((*nodes)[1].node == "a");
  CHECK((*nodes)[2].node == "c");
  CHECK((*nodes)[2].error_kind == ErrorKind::kTransient);
  CHECK((*nodes)[2].error_message == R"(a "quoted" \ {brace}, NULL)");
  CHECK((*nodes)[0].output_json == R"({"x":"\u0000 ✓"})");
  CHECK((*nodes)[0].started_at == 0.1 + 0.2);
  CHECK((*nodes)[0].finished_at == 1e-300);
  CHECK((*nodes)[0].attempts == 2);
  CHECK_FALSE((*nodes)[2].output_json.has_value());
  auto events = store->GetEvents("r1");
  REQUIRE(events.ok());
  REQUIRE(events->size() == 2);
  CHECK((*events)[0].seq == 1);
  CHECK((*events)[0].kind == "node_failed");
  CHECK((*events)[0].ts == 4.25);
  CHECK((*events)[1].seq == 2);
  CHECK((*events)[1].kind == "NULL");
  CHECK((*events)[1].data_json == R"({"s":"\"{,}\\"})");
  auto versions = store->GetScriptVersions("r1");
  REQUIRE(versions.ok());
  REQUIRE(versions->size() == 1);
  REQUIRE(versions->at(0).modules.size() == 1);
  CHECK(versions->at(0).modules[0].path == "/tmp/util.lua");

  REQUIRE(store->CreateRun(MakeRun("r2")).ok());
  CHECK_FALSE(store->CreateRun(MakeRun("r2")).ok());
  auto ambiguous = store->GetRun("r");
  REQUIRE_FALSE(ambiguous.ok());
  CHECK(ambiguous.status().message().find("ambiguous") != std::string::npos);
  RunFilter filter;
  filter.status = RunStatus::kFailed;
  auto listed = store->ListRuns(filter);
  REQUIRE(listed.ok());
  REQUIRE(listed->size() == 1);
  CHECK(listed->at(0).nodes_done == 2);

  auto v1 = store->DataVersion();
  auto v2 = store->DataVersion();
  REQUIRE(v1.ok());
  REQUIRE(v2.ok());
  CHECK(*v1 == *v2);
  store->Heartbeat("r2", 5);
  REQUIRE(store->Flush().ok());
  auto v3 = store->DataVersion();
  REQUIRE(v3.ok());
  CHECK(*v3 != *v2);
  CHECK(store->CheckReady().ok());

  // What workers left of r1 goes with it: its queue rows and claim log.
  auto admin = Admin(*url);
  Sql(*admin, "INSERT INTO node_queue (run_id, node, state, attempt) VALUES ('r1', 'a', 'done', 1)");
  Sql(*admin, "INSERT INTO claim_log (run_id, node, attempt, worker_id, action) VALUES "
              "('r1', 'a', 1, 'w', 'claim'), ('r2', 'a', 1, 'w', 'claim')");
  auto deleted = store->DeleteFinishedBefore(100);
  REQUIRE(deleted.ok());
  CHECK(*deleted == 1);
  CHECK_FALSE(store->GetRun("r1").ok());
  CHECK(Count(*admin, "SELECT count(*) FROM node_queue") == 0);
  CHECK(Count(*admin, "SELECT count(*) FROM claim_log WHERE run_id = 'r1'") == 0);
  CHECK(Count(*admin, "SELECT count(*) FROM claim_log WHERE run_id = 'r2'") == 1);
}

TEST_CASE("group commit: 1,000 queued events take far fewer transactions" * doctest::timeout(60)) {
  auto url = FreshPgDatabase("group");
  if (!url) {
    MESSAGE("no PostgreSQL server");
    return;
  }
  auto store = OpenStore(*url);
  REQUIRE(store->CreateRun(MakeRun("r1")).ok());
  for (int i = 0; i < 1000; ++i) store->AppendEvent(MakeEvent("r1", std::to_string(i)));
  REQUIRE(store->Flush().ok());
  auto admin = Admin(*url);
  CHECK(Count(*admin, "SELECT count(*) FROM events") == 1000);
  // Each row's xmin is the transaction that inserted it.
  const int64_t transactions = Count(*admin, "SELECT count(DISTINCT xmin::text) FROM events");
  MESSAGE("1000 events in " << transactions << " transactions");
  CHECK(transactions < 50);
  CHECK(Count(*admin, "SELECT count(*) FROM events WHERE seq::text <> (data_json::integer + 1)::text") == 0);
}

TEST_CASE("claims are fenced between two stores on one database" * doctest::timeout(60)) {
  auto url = FreshPgDatabase("fence");
  if (!url) {
    MESSAGE("no PostgreSQL server");
    return;
  }
  auto first = OpenStore(*url);
  auto second = OpenStore(*url);
  REQUIRE(first->CreateRun(MakeRun("r1")).ok());
  first->SaveNode(MakeNode("r1", "a"));
  REQUIRE(first->Flush().ok());

  // A live owner is not taken over.
  auto refused = second->ClaimRun(MakeRun("r1"), 1, [](const Owner&, double) { return true; });
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().message().find("still owned") != std::string::npos);

  RunRecord again = MakeRun("r1");
  again.script_sha256 = "11";
  auto claimed = second->ClaimRun(again, 1, kDead);
  REQUIRE_MESSAGE(claimed.ok(), claimed.status().ToString());
  CHECK(claimed->epoch == 2);
  CHECK(claimed->nodes.size() == 1);
  CHECK(claimed->script_version == 2);
  REQUIRE(claimed->changed_files.size() == 1);

  // A claim that read the old epoch is refused.
  auto stale = first->ClaimRun(MakeRun("r1"), 1, kDead);
  REQUIRE_FALSE(stale.ok());
  CHECK(stale.status().message().find("taken over") != std::string::npos);

  first->SaveNode(MakeNode("r1", "late"));
  Status flushed = first->Flush();
  REQUIRE_FALSE(flushed.ok());
  CHECK(flushed.kind() == ErrorKind::kPermanent);
  CHECK(flushed.message().find("taken over") != std::string::npos);
  CHECK_FALSE(first->WriteHealth().ok());

  second->SaveNode(MakeNode("r1", "b"));
  REQUIRE(second->Flush().ok());
  auto nodes = second->GetNodes("r1");
  REQUIRE(nodes.ok());
  REQUIRE(nodes->size() == 2);
  CHECK((*nodes)[1].node == "b");
  CHECK((*nodes)[1].script_version == 2);

  // Two claims at once: exactly one wins.
  auto third = OpenStore(*url);
  std::atomic<int> won{0};
  std::thread t1([&] { won += second->ClaimRun(MakeRun("r1"), 2, kDead).ok(); });
  std::thread t2([&] { won += third->ClaimRun(MakeRun("r1"), 2, kDead).ok(); });
  t1.join();
  t2.join();
  CHECK(won == 1);

  // A rerun resets the named nodes and records why, in one transaction.
  auto fourth = OpenStore(*url);
  auto rerun = fourth->ClaimRunForRerun(MakeRun("r1"), 3, "a", {"a"}, kDead);
  REQUIRE_MESSAGE(rerun.ok(), rerun.status().ToString());
  CHECK(rerun->nodes[0].status == NodeStatus::kPending);
  auto events = fourth->GetEvents("r1");
  REQUIRE(events.ok());
  REQUIRE_FALSE(events->empty());
  CHECK(events->back().kind == "rerun");
}

TEST_CASE("connections killed mid-queue lose and duplicate nothing" * doctest::timeout(120)) {
  auto url = FreshPgDatabase("killed");
  if (!url) {
    MESSAGE("no PostgreSQL server");
    return;
  }
  auto store = OpenStore(*url);
  REQUIRE(store->CreateRun(MakeRun("r1")).ok());
  std::atomic<bool> done{false};
  std::atomic<int64_t> killed{0};
  std::thread killer([&] {
    auto killer_conn = Admin(*url);
    for (int i = 0; i < 40 && !done; ++i) {
      killed += TerminateOthers(*killer_conn, DbNameOf(*url));
      std::this_thread::sleep_for(std::chrono::milliseconds(15));
    }
  });
  constexpr int kEvents = 3000;
  for (int i = 0; i < kEvents; ++i) {
    store->AppendEvent(MakeEvent("r1", std::to_string(i)));
    if (i % 100 == 0) store->SaveNode(MakeNode("r1", "n" + std::to_string(i)));
    if (i % 50 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  Status flushed = store->Flush();
  done = true;
  killer.join();
  REQUIRE_MESSAGE(flushed.ok(), flushed.ToString());
  MESSAGE(killed.load() << " connections killed");
  CHECK(killed > 0);
  auto admin = Admin(*url);
  CHECK(Count(*admin, "SELECT count(*) FROM events") == kEvents);
  // In order, each once: event i has seq i + 1.
  CHECK(Count(*admin, "SELECT count(*) FROM events WHERE seq <> data_json::integer + 1") == 0);
  CHECK(Count(*admin, "SELECT count(*) FROM nodes") == kEvents / 100);
  CHECK(Count(*admin, "SELECT last_seq FROM runs") == kEvents);
}

TEST_CASE("a batch whose COMMIT went unanswered is not written twice" * doctest::timeout(60)) {
  auto url = FreshPgDatabase("unanswered");
  if (!url) {
    MESSAGE("no PostgreSQL server");
    return;
  }
  // postgresql://USER@127.0.0.1:PORT/DB through the proxy.
  const size_t colon = url->rfind(':');
  const size_t slash = url->find('/', colon);
  test::CommitCutter cutter(std::stoi(url->substr(colon + 1, slash - colon - 1)));
  const std::string proxied =
      url->substr(0, colon + 1) + std::to_string(cutter.port()) + url->substr(slash);
  auto store = OpenStore(proxied);
  REQUIRE(store->CreateRun(MakeRun("r1")).ok());
  REQUIRE(store->Flush().ok());
  cutter.Arm();
  constexpr int kEvents = 200;
  for (int i = 0; i < kEvents; ++i) store->AppendEvent(MakeEvent("r1", std::to_string(i)));
  store->SaveNode(MakeNode("r1", "a"));
  Status flushed = store->Flush();
  REQUIRE_MESSAGE(flushed.ok(), flushed.ToString());
  CHECK(cutter.cuts() == 1);
  auto admin = Admin(*url);
  CHECK(Count(*admin, "SELECT count(*) FROM events") == kEvents);
  CHECK(Count(*admin, "SELECT count(*) FROM events WHERE seq <> data_json::integer + 1") == 0);
  CHECK(Count(*admin, "SELECT last_seq FROM runs") == kEvents);
  // And the store goes on writing.
  store->AppendEvent(MakeEvent("r1", std::to_string(kEvents)));
  REQUIRE(store->Flush().ok());
  CHECK(Count(*admin, "SELECT count(*) FROM events") == kEvents + 1);
}

TEST_CASE("a database that refuses writes: a clear error after the stall timeout" *
          doctest::timeout(60)) {
  auto url = FreshPgDatabase("readonly");
  if (!url) {
    MESSAGE("no PostgreSQL server");
    return;
  }
  auto store = OpenStore(*url, /*stall_timeout=*/1.0);
  REQUIRE(store->CreateRun(MakeRun("r1")).ok());
  store->SaveNode(MakeNode("r1", "a"));
  REQUIRE(store->Flush().ok());
  auto admin = Admin(*PgServerUrl());
  Sql(*admin, "ALTER DATABASE " + DbNameOf(*url) + " SET default_transaction_read_only = on");
  TerminateOthers(*admin, DbNameOf(*url));

  store->SaveNode(MakeNode("r1", "b"));
  store->AppendEvent(MakeEvent("r1", "1"));
  const auto started = std::chrono::steady_clock::now();
  Status flushed = store->Flush();
  REQUIRE_FALSE(flushed.ok());
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(20));
  CHECK(flushed.kind() == ErrorKind::kTransient);
  CHECK(flushed.message().find("read-only") != std::string::npos);
  CHECK(flushed.message().find("writes failing for") != std::string::npos);
  CHECK_FALSE(store->CheckReady().ok());

  auto reader = Admin(*url);
  CHECK(Count(*reader, "SELECT count(*) FROM nodes") == 1);
  CHECK(Count(*reader, "SELECT count(*) FROM events") == 0);
  Sql(*admin, "ALTER DATABASE " + DbNameOf(*url) + " SET default_transaction_read_only = off");
}

}  // namespace
}  // namespace keel
