// The real `keel` binary with --db set to a fresh PostgreSQL database: run, runs, show, graph, gc, resume after kill -9, a database
// without keel's schema, and messages that never show a password.

#include <doctest/doctest.h>
#include <signal.h>

#include <chrono>
#include <memory>
#include <string>

#include "store/postgres/pg_connection.h"
#include "tests/support/files.h"
#include "tests/support/json.h"
#include "tests/support/keel_cli.h"
#include "tests/support/pg_database.h"
#include "tests/support/sandbox.h"

namespace keel::testing {
namespace {

constexpr auto kWait = std::chrono::seconds(60);

// a, then b after it; b waits for the file GO to exist.
std::string Script(const Sandbox& box) {
  return R"lua(local keel = require "keel"
local GO = ")lua" + box.Path("go") + R"lua("
local function exists(path)
  local f = io.open(path, "r")
  if f then f:close() return true end
  return false
end
return keel.workflow "pair" {
  keel.fn "a" { run = function() return { x = 0.1 + 0.2, s = "héllo" } end },
  keel.fn "b" {
    after = { "a" },
    run = function(ctx)
      while not exists(GO) do keel.sleep(0.01) end
      return ctx.deps.a.x * 2
    end,
  },
}
)lua";
}

std::string Query(const std::string& url, const std::string& sql, const pg::Params& params) {
  auto conn = pg::Connection::Open(url);
  REQUIRE_MESSAGE(conn.ok(), conn.status().ToString());
  auto rows = (*conn)->Exec(sql, params, "test");
  REQUIRE_MESSAGE(rows.ok(), rows.status().ToString());
  return rows->size() > 0 ? rows->str(0, 0) : "";
}

#define NEED_SERVER(url)                \
  if (!(url)) {                         \
    MESSAGE("no PostgreSQL server");    \
    return;                             \
  }

TEST_CASE("run, runs, show, graph and gc on PostgreSQL" * doctest::timeout(180)) {
  auto url = test::FreshPgDatabase("cli");
  NEED_SERVER(url);
  Sandbox box(KEEL_BIN);
  const std::string wf = box.Write("pair.lua", Script(box));
  WriteFile(box.Path("go"), "");

  ExitInfo ran = box.Keel({"run", wf, "--db", *url});
  INFO(ran.Describe());
  REQUIRE(ran.exit_code == 0);
  const std::string id = RunIdFromStderr(ran.err);
  REQUIRE_FALSE(id.empty());
  CHECK(Query(*url, "SELECT status FROM runs WHERE id = $1", {id}) == "succeeded");

  ExitInfo runs = box.Keel({"runs", "--db", *url, "--json"});
  INFO(runs.Describe());
  REQUIRE(runs.exit_code == 0);
  Json listed = Json::Parse(runs.out);
  REQUIRE(listed.Size() == 1);
  CHECK(listed[size_t{0}]["status"].Str() == "succeeded");

  ExitInfo show = box.Keel({"show", id.substr(0, id.size() - 2), "--db", *url, "--json"});
  INFO(show.Describe());
  REQUIRE(show.exit_code == 0);
  Json shown = Json::Parse(show.out);
  Json a = NodeEntry(shown["nodes"], "a");
  REQUIRE_FALSE(a.IsNull());
  // The output as keel encoded it, byte for byte.
  const std::string stored =
      Query(*url, "SELECT output_json FROM nodes WHERE run_id = $1 AND node = 'a'", {id});
  const std::string x = stored.substr(stored.find("\"x\":"));
  CHECK(show.out.find(x.substr(0, x.find_first_of(",}"))) != std::string::npos);
  CHECK(a["output"]["s"].Str() == "héllo");

  ExitInfo graph = box.Keel({"graph", id, "--db", *url});
  INFO(graph.Describe());
  CHECK(graph.exit_code == 0);
  CHECK(graph.out.find("digraph") != std::string::npos);

  ExitInfo gc = box.Keel({"gc", "--older-than", "0s", "--db", *url});
  INFO(gc.Describe());
  CHECK(gc.exit_code == 0);
  CHECK(gc.out.find("deleted 1 runs") != std::string::npos);
  CHECK(Query(*url, "SELECT count(*) FROM runs", {}) == "0");
}

TEST_CASE("resume after kill -9 on PostgreSQL" * doctest::timeout(180)) {
  auto url = test::FreshPgDatabase("resume");
  NEED_SERVER(url);
  Sandbox box(KEEL_BIN);
  const std::string wf = box.Write("pair.lua", Script(box));
  KeelCli cli(KEEL_BIN, box.dir());
  std::unique_ptr<Subprocess> run = cli.Start({"run", wf, "--db", *url});
  REQUIRE(run->WaitForStderr(" started: ", kWait));
  const std::string id = RunIdFromStderr(run->Stderr());
  REQUIRE_FALSE(id.empty());
  REQUIRE(WaitUntil(
      [&] {
        return Query(*url, "SELECT count(*) FROM nodes WHERE run_id = $1 AND node = 'a' AND "
                           "status = 'succeeded'",
                     {id}) == "1";
      },
      kWait));
  ExitInfo killed = run->Kill();
  REQUIRE(killed.signal == SIGKILL);
  WriteFile(box.Path("go"), "");

  ExitInfo resumed = cli.Run({"resume", id, "--db", *url});
  INFO(resumed.Describe());
  REQUIRE(resumed.exit_code == 0);
  CHECK(Query(*url, "SELECT status FROM runs WHERE id = $1", {id}) == "succeeded");
  CHECK(Query(*url, "SELECT epoch FROM runs WHERE id = $1", {id}) == "2");
  CHECK(Query(*url, "SELECT count(*) FROM events WHERE run_id = $1 AND kind = 'node_succeeded' "
                    "AND node = 'a'",
              {id}) == "1");
  CHECK(Query(*url, "SELECT count(*) FROM events WHERE run_id = $1 AND kind = 'run_resumed'",
              {id}) == "1");

  // A second resume of the finished run is refused clearly.
  ExitInfo again = cli.Run({"resume", id, "--db", *url});
  CHECK(again.err.find("already succeeded") != std::string::npos);
}

TEST_CASE("a database without keel's schema, and passwords kept out of messages" *
          doctest::timeout(120)) {
  auto url = test::FreshPgDatabase("empty");
  NEED_SERVER(url);
  Sandbox box(KEEL_BIN);
  ExitInfo runs = box.Keel({"runs", "--db", *url});
  INFO(runs.Describe());
  CHECK(runs.exit_code == 0);
  CHECK(runs.err.find("no database") != std::string::npos);
  // Reading wrote nothing: still no schema.
  CHECK(Query(*url, "SELECT to_regclass('keel_schema') IS NULL", {}) == "t");

  ExitInfo show = box.Keel({"show", "nope", "--db", *url});
  CHECK(show.exit_code != 0);
  CHECK(show.err.find("no keel database") != std::string::npos);

  const size_t at = url->find('@');
  const std::string secret = url->substr(0, at) + ":pw-s3cret" + url->substr(at);
  ExitInfo shown = box.Keel({"show", "nope", "--db", secret});
  CHECK(shown.exit_code != 0);
  CHECK(shown.err.find("pw-s3cret") == std::string::npos);
  CHECK(shown.err.find("***") != std::string::npos);

  const std::string missing = test::PgDatabaseUrl(*test::PgServerUrl(), "no_such_db");
  const std::string missing_secret =
      missing.substr(0, missing.find('@')) + ":pw-s3cret" + missing.substr(missing.find('@'));
  ExitInfo refused = box.Keel({"runs", "--db", missing_secret});
  INFO(refused.Describe());
  CHECK(refused.exit_code != 0);
  CHECK(refused.err.find("no_such_db") != std::string::npos);
  CHECK(refused.err.find("pw-s3cret") == std::string::npos);
}

// Signals, cancellation and breakers on PostgreSQL (store/postgres/
// pg_waits.h and pg_breakers.h through PostgresStore).
TEST_CASE("signal, cancel and breakers on PostgreSQL" * doctest::timeout(180)) {
  auto url = test::FreshPgDatabase("signals");
  NEED_SERVER(url);
  Sandbox box(KEEL_BIN);
  const std::string wf = box.Write("gate.lua", R"lua(local keel = require "keel"
return keel.workflow "gate" {
  keel.wait "approval" { signal = "go" },
  keel.fn "done" { after = { "approval" }, run = function(ctx) return ctx.deps.approval.by end },
}
)lua");
  ExitInfo parked = box.Keel({"run", wf, "--db", *url});
  INFO(parked.Describe());
  REQUIRE(parked.exit_code == 4);
  const std::string id = RunIdFromStderr(parked.err);
  ExitInfo signalled = box.Keel({"signal", id, "go", "--data", R"({"by":"ann"})", "--db", *url});
  INFO(signalled.Describe());
  REQUIRE(signalled.exit_code == 0);
  ExitInfo resumed = box.Keel({"resume", id, "--db", *url});
  INFO(resumed.Describe());
  CHECK(resumed.exit_code == 0);
  CHECK(Query(*url, "SELECT output_json FROM nodes WHERE run_id = $1 AND node = 'done'", {id}) ==
        "\"ann\"");

  ExitInfo second = box.Keel({"run", wf, "--db", *url});
  REQUIRE(second.exit_code == 4);
  const std::string other = RunIdFromStderr(second.err);
  ExitInfo cancelled = box.Keel({"cancel", other, "--db", *url});
  INFO(cancelled.Describe());
  CHECK(cancelled.exit_code == 0);
  CHECK(Query(*url, "SELECT status FROM runs WHERE id = $1", {other}) == "cancelled");

  ExitInfo breakers = box.Keel({"breakers", "--db", *url, "--json"});
  INFO(breakers.Describe());
  CHECK(breakers.exit_code == 0);
  CHECK(breakers.out.find("[]") != std::string::npos);
}

// An operator's breaker states on PostgreSQL: the same OperateBreaker
// through PostgresStore::UpdateBreaker.
TEST_CASE("breakers --force-open and --close on PostgreSQL" * doctest::timeout(180)) {
  auto url = test::FreshPgDatabase("breaker_ops");
  NEED_SERVER(url);
  Sandbox box(KEEL_BIN);
  const std::string wf = box.Write("call.lua", R"lua(local keel = require "keel"
return keel.workflow "call" {
  keel.fn "call" { circuit = { key = "api" }, run = function() return "ok" end },
}
)lua");
  ExitInfo first = box.Keel({"run", wf, "--db", *url});
  INFO(first.Describe());
  REQUIRE(first.exit_code == 0);
  ExitInfo unknown = box.Keel({"breakers", "--force-open", "apj", "--db", *url});
  CHECK(unknown.exit_code == 2);
  CHECK(unknown.err.find("no breaker 'apj' (did you mean 'api'?)") != std::string::npos);

  ExitInfo forced = box.Keel({"breakers", "--force-open", "api", "--db", *url});
  INFO(forced.Describe());
  CHECK(forced.out == "breaker api forced open (was closed)\n");
  ExitInfo refused = box.Keel({"run", wf, "--db", *url});
  INFO(refused.Describe());
  CHECK(refused.exit_code == 1);
  ExitInfo json = box.Keel({"breakers", "--json", "--summary", "--db", *url});
  REQUIRE(json.exit_code == 0);
  Json both = Json::Parse(json.out);
  CHECK(both["summary"]["states"]["forced_open"].Int() == 1);
  CHECK(both["breakers"][0]["state"].Str() == "forced_open");
  CHECK(both["breakers"][0]["rejected"].Int() >= 1);

  ExitInfo closed = box.Keel({"breakers", "--close", "api", "--db", *url});
  CHECK(closed.out == "breaker api closed (was forced open)\n");
  ExitInfo again = box.Keel({"run", wf, "--db", *url});
  INFO(again.Describe());
  CHECK(again.exit_code == 0);
}

}  // namespace
}  // namespace keel::testing
