// Opening SQLite stores: creation, options, schema migrations, and the
// refusal of files that are not keel databases (which must stay untouched).

#include "store/sqlite/sqlite_schema.h"

#include <doctest/doctest.h>

#include <random>
#include <string>
#include <vector>

#include "store/sqlite/sqlite_read_only_store.h"
#include "store/sqlite/sqlite_store.h"
#include "tests/sqlite_test_util.h"

namespace keel {
namespace {

using testing::Exists;
using testing::RawDb;
using testing::ReadBytes;
using testing::ScratchDir;
using testing::WriteBytes;

SqliteStoreOptions Create() { return SqliteStoreOptions{}; }

SqliteStoreOptions MustExist() {
  SqliteStoreOptions options;
  options.create_if_missing = false;
  return options;
}

RunRecord SampleRun(const std::string& id) {
  RunRecord run;
  run.id = id;
  run.workflow = "research";
  run.script_path = "/tmp/flow.lua";
  run.script_sha256 = "ab12";
  run.script_text = "return 1";
  run.params_json = R"({"topic":"breakers"})";
  run.owner = {4242, "host-a", 777};
  run.heartbeat = 10.5;
  run.created_at = 10.25;
  run.updated_at = 10.5;
  run.node_count = 3;
  return run;
}

// Opens `path`, expects a kPermanent refusal containing `message`, and
// checks that the file is byte-identical and no WAL files appeared.
void ExpectRefusedUntouched(const std::string& path, const std::string& message,
                            const SqliteStoreOptions& options = Create()) {
  const std::string before = ReadBytes(path);
  auto store = SqliteStore::Open(path, options);
  REQUIRE_FALSE(store.ok());
  CHECK(store.status().kind() == ErrorKind::kPermanent);
  CHECK(store.status().message().find(path) != std::string::npos);
  CHECK_MESSAGE(store.status().message().find(message) != std::string::npos,
                store.status().message());
  CHECK(ReadBytes(path) == before);
  CHECK_FALSE(Exists(path + "-wal"));
  CHECK_FALSE(Exists(path + "-shm"));
  CHECK_FALSE(Exists(path + "-journal"));
}

TEST_CASE("a missing database is created, initialized and reopened") {
  ScratchDir dir;
  const std::string path = dir.Path("keel.db");
  {
    auto store = SqliteStore::Open(path, Create());
    REQUIRE_MESSAGE(store.ok(), store.status().ToString());
    REQUIRE((*store)->CreateRun(SampleRun("r1")).ok());
  }
  {
    RawDb raw(path);
    CHECK(raw.Int("PRAGMA application_id") == sqlite::kApplicationId);
    CHECK(raw.Int("PRAGMA user_version") == sqlite::KeelMigrations().back().version);
    CHECK(raw.Text("PRAGMA journal_mode") == "wal");
    CHECK(raw.Int("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN "
                  "('runs', 'nodes', 'events', 'breakers')") == 4);
  }
  auto store = SqliteStore::Open(path, MustExist());
  REQUIRE_MESSAGE(store.ok(), store.status().ToString());
  auto run = (*store)->GetRun("r1");
  REQUIRE(run.ok());
  RunRecord want = SampleRun("r1");
  CHECK(run->workflow == want.workflow);
  CHECK(run->script_path == want.script_path);
  CHECK(run->script_sha256 == want.script_sha256);
  CHECK(run->script_text == want.script_text);
  CHECK(run->params_json == want.params_json);
  CHECK(run->status == RunStatus::kRunning);
  CHECK(run->owner.pid == 4242);
  CHECK(run->owner.host == "host-a");
  CHECK(run->owner.start_ticks == 777);
  CHECK(run->heartbeat == 10.5);
  CHECK(run->created_at == 10.25);
  CHECK(run->updated_at == 10.5);
  CHECK(run->finished_at == 0);
  CHECK(run->node_count == 3);
  CHECK(run->error.empty());
}

TEST_CASE("closing the last store removes the WAL files") {
  ScratchDir dir;
  const std::string path = dir.Path("keel.db");
  {
    auto store = SqliteStore::Open(path, Create());
    REQUIRE(store.ok());
    REQUIRE((*store)->CreateRun(SampleRun("r1")).ok());
    CHECK(Exists(path + "-wal"));
  }
  CHECK_FALSE(Exists(path + "-wal"));
  CHECK_FALSE(Exists(path + "-shm"));
}

TEST_CASE("without create_if_missing a missing or empty file is refused") {
  ScratchDir dir;
  const std::string missing = dir.Path("missing.db");
  auto store = SqliteStore::Open(missing, MustExist());
  REQUIRE_FALSE(store.ok());
  CHECK(store.status().kind() == ErrorKind::kPermanent);
  CHECK(store.status().message() == "no keel database at " + missing);
  CHECK_FALSE(Exists(missing));

  const std::string empty = dir.Path("empty.db");
  WriteBytes(empty, "");
  ExpectRefusedUntouched(empty, "no keel database at", MustExist());
}

TEST_CASE("an empty file becomes a new database") {
  ScratchDir dir;
  const std::string path = dir.Path("empty.db");
  WriteBytes(path, "");
  auto store = SqliteStore::Open(path, Create());
  REQUIRE_MESSAGE(store.ok(), store.status().ToString());
  CHECK((*store)->CreateRun(SampleRun("r1")).ok());
}

TEST_CASE("a directory is refused") {
  ScratchDir dir;
  auto store = SqliteStore::Open(dir.Path(""), Create());
  REQUIRE_FALSE(store.ok());
  CHECK(store.status().message().find("is a directory") != std::string::npos);
}

TEST_CASE("durability full opens and writes") {
  ScratchDir dir;
  SqliteStoreOptions options;
  options.durability = SqliteDurability::kFull;
  auto store = SqliteStore::Open(dir.Path("full.db"), options);
  REQUIRE(store.ok());
  CHECK((*store)->CreateRun(SampleRun("r1")).ok());
}

TEST_CASE("files that are not keel databases are refused and left byte-identical") {
  ScratchDir dir;

  SUBCASE("random bytes") {
    std::mt19937 rng(7);
    std::string bytes(8192, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    const std::string path = dir.Path("random.bin");
    WriteBytes(path, bytes);
    ExpectRefusedUntouched(path, "is not a keel database: file is not a database");
  }
  SUBCASE("a short text file") {
    const std::string path = dir.Path("notes.txt");
    WriteBytes(path, "hello, keel\n");
    ExpectRefusedUntouched(path, "is not a keel database: file is not a database");
  }
  SUBCASE("another program's database") {
    const std::string path = dir.Path("other.db");
    RawDb(path).Exec("CREATE TABLE contacts (name TEXT); INSERT INTO contacts VALUES ('x');");
    ExpectRefusedUntouched(path, "is not a keel database: it holds another program's tables");
  }
  SUBCASE("another program's database in WAL mode") {
    const std::string path = dir.Path("other-wal.db");
    RawDb(path).Exec("PRAGMA journal_mode = WAL; CREATE TABLE t (x);");
    REQUIRE_FALSE(Exists(path + "-wal"));
    ExpectRefusedUntouched(path, "another program's tables");
  }
  SUBCASE("another program's application id") {
    const std::string path = dir.Path("tagged.db");
    RawDb(path).Exec("PRAGMA application_id = 1234;");
    ExpectRefusedUntouched(path, "belongs to another program (application_id 0x000004d2)");
  }
  SUBCASE("a user_version without keel's application id") {
    const std::string path = dir.Path("versioned.db");
    RawDb(path).Exec("PRAGMA user_version = 3;");
    ExpectRefusedUntouched(path, "user_version 3");
  }
  SUBCASE("a keel database from a newer keel") {
    const std::string path = dir.Path("newer.db");
    {
      auto store = SqliteStore::Open(path, Create());
      REQUIRE(store.ok());
      REQUIRE((*store)->CreateRun(SampleRun("r1")).ok());
    }
    RawDb(path).Exec("PRAGMA user_version = 99;");
    ExpectRefusedUntouched(path, "was written by a newer keel (schema version 99");
  }
}

TEST_CASE("a keel database at version 0 is migrated, and reopening does not migrate again") {
  ScratchDir dir;
  const std::string path = dir.Path("old.db");
  RawDb(path).Exec("PRAGMA application_id = " + std::to_string(sqlite::kApplicationId));
  {
    auto store = SqliteStore::Open(path, MustExist());
    REQUIRE_MESSAGE(store.ok(), store.status().ToString());
    REQUIRE((*store)->CreateRun(SampleRun("r1")).ok());
  }
  CHECK(RawDb(path).Int("PRAGMA user_version") == sqlite::KeelMigrations().back().version);
  // The migrations use plain CREATE TABLE/INDEX: running them again would fail.
  auto store = SqliteStore::Open(path, MustExist());
  REQUIRE_MESSAGE(store.ok(), store.status().ToString());
  CHECK((*store)->GetRun("r1").ok());
}

TEST_CASE("a statement compiles at its first use; one that cannot fails that use") {
  ScratchDir dir;
  const std::string path = dir.Path("plain.db");
  auto conn = sqlite::Connection::Open(path, path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, 10);
  REQUIRE(conn.ok());
  sqlite::Statement insert;
  // The table does not exist yet: preparing does not compile, so it is fine.
  REQUIRE(insert.Prepare(conn->get(), "INSERT INTO t (v) VALUES (?1)").ok());
  REQUIRE((*conn)->Exec("CREATE TABLE t (v INTEGER)", "creating").ok());
  REQUIRE(insert.Bind(1, 7).Run("inserting").ok());
  sqlite::Statement count;
  REQUIRE(count.Prepare(conn->get(), "SELECT count(*), max(v) FROM t").ok());
  Status status;
  REQUIRE(count.Step(&status, "counting"));
  CHECK(count.Int(0) == 1);
  CHECK(count.Int(1) == 7);
  count.Reset();

  sqlite::Statement broken;
  REQUIRE(broken.Prepare(conn->get(), "SELECT nosuchcolumn FROM t WHERE v = ?1").ok());
  broken.Bind(1, 1);  // binding a statement that does not compile is harmless
  Status failed;
  CHECK_FALSE(broken.Step(&failed, "reading"));
  CHECK(failed.kind() == ErrorKind::kPermanent);
  CHECK(failed.message().find("cannot prepare a statement") != std::string::npos);
  CHECK(failed.message().find("nosuchcolumn") != std::string::npos);
  Status again = broken.Run("reading");
  CHECK(again.kind() == ErrorKind::kPermanent);
}

TEST_CASE("migrations apply only the missing steps, once, in one transaction") {
  ScratchDir dir;
  const std::string path = dir.Path("keel.db");
  {
    auto store = SqliteStore::Open(path, Create());
    REQUIRE(store.ok());
    REQUIRE((*store)->CreateRun(SampleRun("r1")).ok());
  }
  std::vector<sqlite::Migration> steps(sqlite::KeelMigrations().begin(),
                                       sqlite::KeelMigrations().end());
  const int next = steps.back().version + 1;
  auto conn = sqlite::Connection::Open(path, path, SQLITE_OPEN_READWRITE, 10);
  REQUIRE(conn.ok());

  SUBCASE("a new step runs once") {
    steps.push_back({next,
                     "ALTER TABLE runs ADD COLUMN tag TEXT; "
                     "CREATE TABLE applied (version INTEGER); INSERT INTO applied VALUES (2);"});
    REQUIRE(sqlite::Migrate(conn->get(), steps, 0).ok());
    REQUIRE(sqlite::Migrate(conn->get(), steps, 0).ok());
    RawDb raw(path);
    CHECK(raw.Int("PRAGMA user_version") == next);
    CHECK(raw.Int("SELECT count(*) FROM applied") == 1);
    CHECK(raw.Text("SELECT workflow FROM runs WHERE id = 'r1'") == "research");
  }
  SUBCASE("a failing step changes nothing") {
    steps.push_back({next, "CREATE TABLE half (x); THIS IS NOT SQL;"});
    Status status = sqlite::Migrate(conn->get(), steps, 0);
    CHECK_FALSE(status.ok());
    CHECK(status.message().find("version " + std::to_string(next)) != std::string::npos);
    RawDb raw(path);
    CHECK(raw.Int("PRAGMA user_version") == next - 1);
    CHECK(raw.Int("SELECT count(*) FROM sqlite_master WHERE name = 'half'") == 0);
  }
  SUBCASE("misnumbered steps are rejected") {
    steps.push_back({next - 1, "SELECT 1"});  // a number taken already
    CHECK_FALSE(sqlite::Migrate(conn->get(), steps, 0).ok());
  }
}

TEST_CASE("breakers from before probe leases migrate with no probes out") {
  ScratchDir dir;
  const std::string path = dir.Path("keel.db");
  RawDb(path).Exec("PRAGMA application_id = " + std::to_string(sqlite::kApplicationId));
  {
    // The schema just before the probe-lease step, with a half-open breaker
    // whose one probe was tracked the old way.
    std::vector<sqlite::Migration> before;
    for (const sqlite::Migration& m : sqlite::KeelMigrations()) {
      if (std::string(m.sql).find("probes_json") != std::string::npos) break;
      before.push_back(m);
    }
    REQUIRE(before.size() < sqlite::KeelMigrations().size());
    auto conn = sqlite::Connection::Open(path, path, SQLITE_OPEN_READWRITE, 10);
    REQUIRE(conn.ok());
    REQUIRE(sqlite::Migrate(conn->get(), before, 0).ok());
  }
  RawDb(path).Exec(
      "INSERT INTO breakers (key, state, failures, probes_out, opened_at, cooldown, probe_lease, "
      "calls, failed) VALUES ('svc', 'half_open', 1, 1, 100, 30, 131, 1, 1)");
  auto store = SqliteStore::Open(path, MustExist());
  REQUIRE_MESSAGE(store.ok(), store.status().ToString());
  auto rows = (*store)->ListBreakers();
  REQUIRE(rows.ok());
  REQUIRE(rows->size() == 1);
  const BreakerSnapshot& s = rows->at(0).snapshot;
  CHECK(s.state == BreakerState::kHalfOpen);
  CHECK(s.probes.empty());  // the next call may probe
  CHECK(s.calls == 1);
  auto written = (*store)->UpdateBreaker("svc", [](BreakerSnapshot& b) {
    b.probes.push_back(ProbeLease{9, Owner{1, "h", 2}, 200, 201});
  });
  REQUIRE(written.ok());
  RawDb raw(path);
  CHECK(raw.Int("SELECT probes_out FROM breakers WHERE key = 'svc'") == 1);
  CHECK(raw.Text("SELECT probes_json FROM breakers WHERE key = 'svc'") ==
        R"([{"id":9,"pid":1,"host":"h","start":2,"started_at":200.0,"renewed_at":201.0}])");
}

TEST_CASE("a version-2 database opens read-only, unchanged, with its runs and breakers") {
  ScratchDir dir;
  const std::string path = dir.Path("keel.db");
  RawDb(path).Exec("PRAGMA application_id = " + std::to_string(sqlite::kApplicationId));
  {
    std::vector<sqlite::Migration> v2(sqlite::KeelMigrations().begin(),
                                      sqlite::KeelMigrations().begin() + 2);
    auto conn = sqlite::Connection::Open(path, path, SQLITE_OPEN_READWRITE, 10);
    REQUIRE(conn.ok());
    REQUIRE(sqlite::Migrate(conn->get(), v2, 0).ok());
  }
  RawDb(path).Exec(
      "INSERT INTO runs (id, workflow, script_path, script_sha256, script_text, params_json, "
      "status, owner_pid, owner_host, owner_start, heartbeat, created_at, updated_at, "
      "node_count) VALUES ('r1', 'w', '/w.lua', '00', '', '{}', 'failed', 1, 'h', 2, 3, 4, 5, 1); "
      "INSERT INTO breakers (key, state) VALUES ('svc', 'open')");
  auto store = SqliteReadOnlyStore::Open(path, 10);
  REQUIRE_MESSAGE(store.ok(), store.status().ToString());
  auto run = (*store)->GetRun("r1");
  REQUIRE(run.ok());
  CHECK(run->epoch == 1);
  CHECK(run->status == RunStatus::kFailed);
  auto breakers = (*store)->ListBreakers();
  REQUIRE(breakers.ok());
  REQUIRE(breakers->size() == 1);
  CHECK(breakers->at(0).snapshot.probes.empty());
  CHECK(RawDb(path).Int("PRAGMA user_version") == 2);
}

TEST_CASE("InspectFile classifies without creating anything") {
  ScratchDir dir;
  const std::string path = dir.Path("keel.db");
  {
    auto store = SqliteStore::Open(path, Create());
    REQUIRE(store.ok());
  }
  const int latest = sqlite::KeelMigrations().back().version;
  auto kind = sqlite::InspectFile(path, latest, 10);
  REQUIRE(kind.ok());
  CHECK(*kind == sqlite::DatabaseKind::kKeel);
  CHECK_FALSE(Exists(path + "-wal"));
  CHECK_FALSE(Exists(path + "-shm"));
  auto newer = sqlite::InspectFile(path, latest - 1, 10);
  CHECK_FALSE(newer.ok());
}

}  // namespace
}  // namespace keel
