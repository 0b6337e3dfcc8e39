#pragma once
// What the tests of `keel worker` processes share: a connection to the
// test's database with polling reads, and the invariants every distributed
// run must keep whatever was done to its workers (claim_log holds every
// claim and commit with its attempt).
//
// For one test thread.

#include <doctest/doctest.h>
#include <signal.h>

#include <chrono>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "store/postgres/pg_connection.h"
#include "tests/support/files.h"
#include "tests/support/keel_cli.h"
#include "tests/support/pg_database.h"
#include "tests/support/subprocess.h"

namespace keel::testing {

struct Db {
  std::unique_ptr<pg::Connection> conn;

  std::string Scalar(const std::string& sql, const pg::Params& params = {}) {
    auto rows = conn->Exec(sql, params, "test query");
    // A connection the server dropped (a restart) is opened again once.
    if (!rows.ok() && conn->Healthy()) rows = conn->Exec(sql, params, "test query");
    REQUIRE_MESSAGE(rows.ok(), rows.status().ToString());
    return rows->size() == 0 ? "" : rows->str(0, 0);
  }
  bool WaitFor(const std::string& sql, const std::string& want, std::chrono::milliseconds limit,
               const pg::Params& params = {}) {
    return WaitUntil([&] { return Scalar(sql, params) == want; }, limit);
  }
};

inline std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// A fresh database on the tests' server, or nullopt (said in a MESSAGE)
// when there is no server and the test should return.
inline std::optional<std::string> FreshDbOrSkip(const std::string& tag) {
  auto url = test::FreshPgDatabase(tag);
  if (!url) MESSAGE("no PostgreSQL server");
  return url;
}

// `keel submit FILE --db URL ARGS...`; the run's id. Fails the test when it
// fails.
inline std::string SubmitFile(const KeelCli& keel, const std::string& file, const std::string& url,
                              const std::vector<std::string>& args = {}) {
  std::vector<std::string> argv = {"submit", file, "--db", url};
  argv.insert(argv.end(), args.begin(), args.end());
  ExitInfo submitted = keel.Run(argv);
  REQUIRE_MESSAGE(submitted.exit_code == 0, submitted.Describe());
  return Trim(submitted.out);
}

inline Db Connect(const std::string& url) {
  auto conn = pg::Connection::Open(url);
  REQUIRE_MESSAGE(conn.ok(), conn.status().ToString());
  return Db{std::move(*conn)};
}

// Stops `workers` (a range of Subprocess pointers, owning or not) as an
// operator would: SIGTERM to each, then up to `limit` for each to exit,
// which it must do with status 0. Returns how each exited, in order.
template <typename Workers>
std::vector<ExitInfo> StopWorkers(const Workers& workers,
                                  std::chrono::milliseconds limit = std::chrono::seconds(30)) {
  for (const auto& w : workers) kill(w->pid(), SIGTERM);
  std::vector<ExitInfo> exits;
  for (const auto& w : workers) {
    exits.push_back(w->Wait(limit));
    CHECK_MESSAGE(exits.back().exit_code == 0, exits.back().Describe());
  }
  return exits;
}

// StopWorkers({a.get(), b.get()}).
inline std::vector<ExitInfo> StopWorkers(
    std::initializer_list<Subprocess*> workers,
    std::chrono::milliseconds limit = std::chrono::seconds(30)) {
  return StopWorkers<std::initializer_list<Subprocess*>>(workers, limit);
}

// Every node of run `id` (`nodes` of them, inner records aside) recorded once, committed once, by the claim that
// was current: the commit's attempt is the node's last claim's.
// With `prompt`, also no ready node idle for long (not so while the
// database refused writes: nothing could be claimed then).
inline void CheckInvariants(Db& db, const std::string& id, int nodes, bool prompt = true) {
  CHECK(db.Scalar("SELECT count(*) FROM nodes WHERE run_id = $1 AND status = 'succeeded' AND "
                  "node NOT LIKE '%[%' AND node NOT LIKE '%/%'",
                  {id}) == std::to_string(nodes));
  CHECK(db.Scalar("SELECT count(*) FROM (SELECT node FROM claim_log WHERE run_id = $1 AND "
                  "action = 'commit' GROUP BY node HAVING count(*) > 1) x",
                  {id}) == "0");
  CHECK(db.Scalar("SELECT count(DISTINCT node) FROM claim_log WHERE run_id = $1 AND "
                  "action = 'commit'",
                  {id}) == std::to_string(nodes));
  // The commit's attempt and worker are those of the node's last claim.
  CHECK(db.Scalar("SELECT count(*) FROM claim_log c WHERE c.run_id = $1 AND c.action = 'commit' "
                  "AND (c.attempt, c.worker_id) <> (SELECT l.attempt, l.worker_id FROM claim_log l "
                  "WHERE l.run_id = c.run_id AND l.node = c.node AND l.action = 'claim' "
                  "ORDER BY l.id DESC LIMIT 1)",
                  {id}) == "0");
  // No two claims of a node share an attempt number, across resumes and
  // wakes of its waits too.
  CHECK(db.Scalar("SELECT count(*) FROM (SELECT node FROM claim_log WHERE run_id = $1 AND "
                  "action = 'claim' GROUP BY node, attempt HAVING count(*) > 1) x",
                  {id}) == "0");
  // No node waits long in the queue once it is ready again: a re-queued or
  // handed-back node is claimed within a few poll periods (200-500 ms).
  if (!prompt) return;
  CHECK(db.Scalar("SELECT count(*) FROM claim_log r WHERE r.run_id = $1 AND r.action IN "
                  "('requeue', 'handback') AND NOT EXISTS (SELECT 1 FROM claim_log c WHERE "
                  "c.run_id = r.run_id AND c.node = r.node AND c.action = 'claim' AND c.id > r.id "
                  "AND c.at < r.at + interval '2 seconds')",
                  {id}) == "0");
}

}  // namespace keel::testing
