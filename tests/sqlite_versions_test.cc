// The SQLite store's schema version 6: a run's configuration, its script
// versions (with modules), node records tagged with the version that wrote
// them, claims for `keel resume --from`, forks, and databases from before.

#include <doctest/doctest.h>

#include "engine/rerun.h"
#include "engine/run_history.h"
#include "store/sqlite/sqlite_read_only_store.h"
#include "store/sqlite/sqlite_schema.h"
#include "tests/sqlite_test_util.h"

namespace keel {
namespace {

using testing::MakeNode;
using testing::MakeRun;
using testing::OpenStore;
using testing::RawDb;
using testing::ScratchDir;

bool Dead(const Owner&, double) { return false; }

ScriptModule Module(const std::string& name, const std::string& sha) {
  return ScriptModule{name, "/tmp/" + name + ".lua", sha, "return {} -- " + sha};
}

// A run with config, a module and a 'done' node; claim it to a new writer.
RunRecord ConfiguredRun(const std::string& id) {
  RunRecord run = MakeRun(id);
  run.config_json = R"({"max_inflight":2})";
  run.modules = {Module("util", "aa")};
  return run;
}

std::vector<std::string> Names(const std::vector<NodeRecord>& nodes) {
  std::vector<std::string> names;
  for (const NodeRecord& n : nodes) names.push_back(n.node);
  return names;
}

const NodeRecord* Find(const std::vector<NodeRecord>& nodes, const std::string& name) {
  for (const NodeRecord& n : nodes) {
    if (n.node == name) return &n;
  }
  return nullptr;
}

TEST_CASE("a run records its configuration and script version 1 with its modules" *
          doctest::timeout(30)) {
  ScratchDir dir;
  auto store = OpenStore(dir.Path("keel.db"));
  REQUIRE(store->CreateRun(ConfiguredRun("r1")).ok());
  store->SaveNode(MakeNode("r1", "a"));
  REQUIRE(store->Flush().ok());

  auto run = store->GetRun("r1");
  REQUIRE(run.ok());
  CHECK(run->config_json == R"({"max_inflight":2})");
  CHECK(run->script_version == 1);
  CHECK(run->forked_from.empty());
  auto versions = store->GetScriptVersions("r1");
  REQUIRE(versions.ok());
  REQUIRE(versions->size() == 1);
  CHECK(versions->at(0).version == 1);
  CHECK(versions->at(0).script_text == run->script_text);
  REQUIRE(versions->at(0).modules.size() == 1);
  CHECK(versions->at(0).modules[0].name == "util");
  CHECK(versions->at(0).modules[0].sha256 == "aa");
  CHECK(versions->at(0).modules[0].text == "return {} -- aa");
  auto nodes = store->GetNodes("r1");
  REQUIRE(nodes.ok());
  CHECK(nodes->at(0).script_version == 1);
}

TEST_CASE("a claim adds a version only when the script or a module changed" *
          doctest::timeout(30)) {
  ScratchDir dir;
  auto store = OpenStore(dir.Path("keel.db"));
  RunRecord run = ConfiguredRun("r1");
  REQUIRE(store->CreateRun(run).ok());
  store->FinishRun("r1", RunStatus::kFailed, "boom", 2);
  REQUIRE(store->Flush().ok());

  auto other = OpenStore(dir.Path("keel.db"));
  RunRecord claim = run;
  claim.config_json = R"({"max_inflight":3})";
  auto same = other->ClaimRun(claim, 1, Dead);
  REQUIRE_MESSAGE(same.ok(), same.status().ToString());
  CHECK(same->script_version == 1);
  CHECK(same->changed_files.empty());
  CHECK(other->GetRun("r1")->config_json == R"({"max_inflight":3})");

  auto third = OpenStore(dir.Path("keel.db"));
  claim.modules = {Module("util", "bb"), Module("extra", "cc")};
  auto changed = third->ClaimRun(claim, same->epoch, Dead);
  REQUIRE_MESSAGE(changed.ok(), changed.status().ToString());
  CHECK(changed->script_version == 2);
  CHECK(changed->changed_files == std::vector<std::string>{"/tmp/util.lua", "/tmp/extra.lua"});
  third->SaveNode(MakeNode("r1", "b"));
  REQUIRE(third->Flush().ok());

  auto versions = third->GetScriptVersions("r1");
  REQUIRE(versions.ok());
  REQUIRE(versions->size() == 2);
  CHECK(versions->at(0).modules.size() == 1);  // version 1 is never overwritten
  CHECK(versions->at(0).modules[0].sha256 == "aa");
  CHECK(versions->at(1).modules.size() == 2);
  CHECK(third->GetRun("r1")->script_version == 2);
  CHECK(Find(*third->GetNodes("r1"), "b")->script_version == 2);
}

TEST_CASE("a claim for a rerun takes a succeeded run and resets exactly the nodes named" *
          doctest::timeout(30)) {
  ScratchDir dir;
  auto store = OpenStore(dir.Path("keel.db"));
  RunRecord run = ConfiguredRun("r1");
  REQUIRE(store->CreateRun(run).ok());
  for (const char* name : {"a", "b", "b[1]", "b/x", "b#2/y", "bb", "c"}) {
    NodeRecord node = MakeNode("r1", name);
    node.attempts = 2;
    store->SaveNode(node);
  }
  store->AppendEvent({"r1", 0, 1, "b", "checkpoint", R"({"step":1})"});
  store->FinishRun("r1", RunStatus::kSucceeded, "", 2);
  REQUIRE(store->Flush().ok());

  auto other = OpenStore(dir.Path("keel.db"));
  // A plain resume still refuses a succeeded run.
  auto plain = other->ClaimRun(run, 1, Dead);
  REQUIRE_FALSE(plain.ok());
  CHECK(plain.status().message().find("already succeeded") != std::string::npos);

  auto alive =
      other->ClaimRunForRerun(run, 1, "b", {"b", "c"}, [](const Owner&, double) { return true; });
  CHECK_FALSE(alive.ok());  // a live owner is refused as for any claim
  auto stale = other->ClaimRunForRerun(run, 7, "b", {"b", "c"}, Dead);
  CHECK_FALSE(stale.ok());  // and so is a stale epoch
  CHECK(Find(*other->GetNodes("r1"), "b")->status == NodeStatus::kSucceeded);

  auto claimed = other->ClaimRunForRerun(run, 1, "b", {"b", "c"}, Dead);
  REQUIRE_MESSAGE(claimed.ok(), claimed.status().ToString());
  CHECK(claimed->epoch == 2);
  CHECK(claimed->before.status == RunStatus::kSucceeded);
  CHECK(Names(claimed->nodes) == std::vector<std::string>{"a", "b", "bb", "c"});
  const NodeRecord* b = Find(claimed->nodes, "b");
  CHECK(b->status == NodeStatus::kPending);
  CHECK(b->attempts == 2);
  CHECK_FALSE(b->output_json);
  CHECK(Find(claimed->nodes, "a")->status == NodeStatus::kSucceeded);
  CHECK(Find(claimed->nodes, "bb")->status == NodeStatus::kSucceeded);
  CHECK(Names(*other->GetNodes("r1")) == Names(claimed->nodes));
  auto again = other->GetRun("r1");
  CHECK(again->status == RunStatus::kRunning);

  auto events = other->GetEvents("r1");
  REQUIRE(events.ok());
  CHECK(events->back().kind == kRerunEventKind);
  CHECK(ReadRunHistory(*events).journals.count("b") == 0);
}

TEST_CASE("a forked run is created with its copied records in one step" * doctest::timeout(30)) {
  ScratchDir dir;
  auto store = OpenStore(dir.Path("keel.db"));
  RunRecord fork = ConfiguredRun("f1");
  fork.forked_from = "r0";
  fork.forked_from_node = "b";
  REQUIRE(store->CreateForkedRun(fork, {MakeNode("r0", "a"), MakeNode("r0", "m[1]")}).ok());
  auto run = store->GetRun("f1");
  REQUIRE(run.ok());
  CHECK(run->forked_from == "r0");
  CHECK(run->forked_from_node == "b");
  auto nodes = store->GetNodes("f1");
  REQUIRE(nodes.ok());
  CHECK(Names(*nodes) == std::vector<std::string>{"a", "m[1]"});
  CHECK(nodes->at(0).run_id == "f1");
  CHECK(nodes->at(0).script_version == 0);
  CHECK(nodes->at(0).output_json == MakeNode("r0", "a").output_json);
  // A taken id leaves nothing behind.
  CHECK_FALSE(store->CreateForkedRun(fork, {MakeNode("r0", "z")}).ok());
  CHECK(Names(*store->GetNodes("f1")) == std::vector<std::string>{"a", "m[1]"});
}

TEST_CASE("gc deletes a run's versions with it" * doctest::timeout(30)) {
  ScratchDir dir;
  auto store = OpenStore(dir.Path("keel.db"));
  REQUIRE(store->CreateRun(ConfiguredRun("r1")).ok());
  store->FinishRun("r1", RunStatus::kSucceeded, "", 2);
  REQUIRE(store->Flush().ok());
  auto deleted = store->DeleteFinishedBefore(10);
  REQUIRE(deleted.ok());
  CHECK(*deleted == 1);
  RawDb raw(dir.Path("keel.db"));
  CHECK(raw.Int("SELECT count(*) FROM script_versions") == 0);
  CHECK(raw.Int("SELECT count(*) FROM script_modules") == 0);
}

// A database at schema version 4 with one failed run and its nodes.
void MakeVersion4(const std::string& path) {
  RawDb(path).Exec("PRAGMA application_id = " + std::to_string(sqlite::kApplicationId));
  {
    std::vector<sqlite::Migration> v4(sqlite::KeelMigrations().begin(),
                                      sqlite::KeelMigrations().begin() + 4);
    auto conn = sqlite::Connection::Open(path, path, SQLITE_OPEN_READWRITE, 10);
    REQUIRE(conn.ok());
    REQUIRE(sqlite::Migrate(conn->get(), v4, 0).ok());
  }
  RawDb(path).Exec(
      "INSERT INTO runs (id, workflow, script_path, script_sha256, script_text, params_json, "
      "status, owner_pid, owner_host, owner_start, heartbeat, created_at, updated_at, "
      "node_count) VALUES ('old', 'w', '/w.lua', '00', 'old text', '{\"k\":1}', 'failed', 1, "
      "'h', 2, 3, 4, 5, 2);"
      "INSERT INTO nodes (run_id, node, status, attempts, output_json, error_kind, "
      "error_message, started_at, finished_at) VALUES "
      "('old', 'a', 'succeeded', 1, '1', 'none', '', 1, 2), "
      "('old', 'b', 'failed', 3, NULL, 'transient', 'boom', 2, 3)");
}

TEST_CASE("a version-4 database opens read-only with its runs, nodes and a version 1" *
          doctest::timeout(30)) {
  ScratchDir dir;
  const std::string path = dir.Path("keel.db");
  MakeVersion4(path);
  auto store = SqliteReadOnlyStore::Open(path, 10);
  REQUIRE_MESSAGE(store.ok(), store.status().ToString());
  auto run = (*store)->GetRun("old");
  REQUIRE_MESSAGE(run.ok(), run.status().ToString());
  CHECK(run->config_json == "{}");
  CHECK(run->script_version == 1);
  auto nodes = (*store)->GetNodes("old");
  REQUIRE_MESSAGE(nodes.ok(), nodes.status().ToString());
  CHECK(Names(*nodes) == std::vector<std::string>{"a", "b"});
  CHECK(nodes->at(1).attempts == 3);
  CHECK(nodes->at(0).script_version == 1);
  auto versions = (*store)->GetScriptVersions("old");
  REQUIRE_MESSAGE(versions.ok(), versions.status().ToString());
  REQUIRE(versions->size() == 1);
  CHECK(versions->at(0).script_text == "old text");
  CHECK(RawDb(path).Int("PRAGMA user_version") == 4);
}

TEST_CASE("a version-4 database migrates; its old run resumes into version 2 when changed" *
          doctest::timeout(30)) {
  ScratchDir dir;
  const std::string path = dir.Path("keel.db");
  MakeVersion4(path);
  auto store = OpenStore(path);
  CHECK(RawDb(path).Int("PRAGMA user_version") == sqlite::KeelMigrations().back().version);
  auto run = store->GetRun("old");
  REQUIRE(run.ok());
  CHECK(run->params_json == R"({"k":1})");
  CHECK(run->config_json == "{}");
  auto nodes = store->GetNodes("old");
  REQUIRE(nodes.ok());
  CHECK(Names(*nodes) == std::vector<std::string>{"a", "b"});
  CHECK(store->GetScriptVersions("old")->size() == 1);

  RunRecord claim = *run;
  claim.script_sha256 = "11";
  claim.script_text = "new text";
  claim.modules = {Module("util", "aa")};
  auto claimed = store->ClaimRun(claim, run->epoch, Dead);
  REQUIRE_MESSAGE(claimed.ok(), claimed.status().ToString());
  CHECK(claimed->script_version == 2);
  CHECK(claimed->changed_files == std::vector<std::string>{"/w.lua"});
  auto versions = store->GetScriptVersions("old");
  REQUIRE(versions->size() == 2);
  CHECK(versions->at(0).script_text == "old text");
  CHECK(versions->at(0).modules.empty());
  CHECK(versions->at(1).script_text == "new text");
  CHECK(versions->at(1).modules.size() == 1);
}

}  // namespace
}  // namespace keel
