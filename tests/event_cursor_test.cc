// The global event cursor (schema version 8): Store::ReadEventsAfter and
// LastEventCursor on the SQLite store, across two stores on one file (as two
// processes), after gc, and on a database migrated from version 7.

#include <doctest/doctest.h>
#include <sqlite3.h>

#include <chrono>

#include "store/sqlite/sqlite_read_only_store.h"
#include "store/sqlite/sqlite_schema.h"
#include "tests/sqlite_test_util.h"

namespace keel {
namespace {

using testing::MakeEvent;
using testing::MakeRun;
using testing::OpenStore;
using testing::RawDb;
using testing::ScratchDir;

std::vector<Store::CursorEvent> After(Store* store, int64_t after, const std::string& run = "",
                                      int limit = 1000) {
  auto events = store->ReadEventsAfter(after, run, limit);
  REQUIRE_MESSAGE(events.ok(), events.status().ToString());
  return std::move(events).value();
}

TEST_CASE("cursors grow in commit order across two stores on one database" *
          doctest::timeout(60)) {
  ScratchDir dir;
  const std::string path = dir.Path("keel.db");
  auto a = OpenStore(path);
  auto b = OpenStore(path);
  CHECK(*a->LastEventCursor() == 0);
  CHECK(After(a.get(), 0).empty());
  for (int i = 0; i < 5; ++i) {
    a->AppendEvent(MakeEvent("ra", "a" + std::to_string(i)));
    REQUIRE(a->Flush().ok());
    b->AppendEvent(MakeEvent("rb", "b" + std::to_string(i)));
    REQUIRE(b->Flush().ok());
  }
  auto all = After(b.get(), 0);
  REQUIRE(all.size() == 10);
  for (size_t i = 0; i < all.size(); ++i) {
    CHECK(all[i].cursor == static_cast<int64_t>(i) + 1);
    CHECK(all[i].event.kind == std::string(i % 2 ? "b" : "a") + std::to_string(i / 2));
    CHECK(all[i].event.seq == static_cast<int64_t>(i / 2) + 1);  // per run, unchanged
  }
  CHECK(*a->LastEventCursor() == 10);

  SUBCASE("a limit, and reading on from the last cursor") {
    auto first = After(a.get(), 0, "", 4);
    REQUIRE(first.size() == 4);
    auto rest = After(a.get(), first.back().cursor);
    REQUIRE(rest.size() == 6);
    CHECK(rest.front().cursor == 5);
  }
  SUBCASE("one run's events only") {
    auto rb = After(a.get(), 3, "rb");
    REQUIRE(rb.size() == 4);
    for (const auto& e : rb) CHECK(e.event.run_id == "rb");
    CHECK(rb.front().cursor == 4);
    CHECK(After(a.get(), 0, "nope").empty());
  }
  SUBCASE("GetEvents is unchanged") {
    auto events = a->GetEvents("ra");
    REQUIRE(events.ok());
    REQUIRE(events->size() == 5);
    CHECK((*events)[4].seq == 5);
    CHECK((*events)[4].kind == "a4");
  }
}

TEST_CASE("gc never lets a cursor be given again" * doctest::timeout(60)) {
  ScratchDir dir;
  const std::string path = dir.Path("keel.db");
  auto store = OpenStore(path);
  RunRecord old_run = MakeRun("old", 1);
  REQUIRE(store->CreateRun(old_run).ok());
  for (int i = 0; i < 3; ++i) store->AppendEvent(MakeEvent("old", "e"));
  store->FinishRun("old", RunStatus::kSucceeded, "", 2);
  REQUIRE(store->Flush().ok());
  CHECK(*store->LastEventCursor() == 3);
  // Every event goes: the newest cursors with them.
  REQUIRE(*store->DeleteFinishedBefore(100) == 1);
  CHECK(After(store.get(), 0).empty());
  CHECK(*store->LastEventCursor() == 3);
  store->AppendEvent(MakeEvent("new", "e"));
  REQUIRE(store->Flush().ok());
  auto events = After(store.get(), 0);
  REQUIRE(events.size() == 1);
  CHECK(events[0].cursor == 4);
  // A cursor older than what gc kept reads on from what exists.
  CHECK(After(store.get(), 1).size() == 1);
}

// A version 7 database with events of two runs, made by keel's own first
// seven migrations.
void MakeVersion7(const std::string& path, int runs, int per_run) {
  auto conn = sqlite::Connection::Open(path, path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, 10);
  REQUIRE(conn.ok());
  auto all = sqlite::KeelMigrations();
  REQUIRE(all[6].version == 7);
  REQUIRE(sqlite::Migrate(conn->get(), all.first(7), 10).ok());
  RawDb raw(path);
  raw.Exec("PRAGMA journal_mode = WAL; BEGIN");
  for (int r = 0; r < runs; ++r) {
    for (int s = 1; s <= per_run; ++s) {
      raw.Exec("INSERT INTO events VALUES ('run" + std::to_string(r) + "', " + std::to_string(s) +
               ", 1, 'n', 'node_succeeded', '{\"seconds\":1}')");
    }
  }
  raw.Exec("COMMIT");
}

TEST_CASE("a version 7 database migrates: every event gets a cursor, run by run" *
          doctest::timeout(120)) {
  ScratchDir dir;
  const std::string path = dir.Path("keel.db");
  MakeVersion7(path, 3, 4);
  SUBCASE("read-only, it still reads as before, and says why it has no cursors") {
    auto ro = SqliteReadOnlyStore::Open(path, 10);
    REQUIRE(ro.ok());
    auto events = (*ro)->GetEvents("run1");
    REQUIRE(events.ok());
    CHECK(events->size() == 4);
    auto cursor = (*ro)->ReadEventsAfter(0, "", 10);
    REQUIRE_FALSE(cursor.ok());
    CHECK(cursor.status().message().find("before event cursors") != std::string::npos);
  }
  SUBCASE("opened for writing, it migrates") {
    auto store = OpenStore(path);
    CHECK(RawDb(path).Int("PRAGMA user_version") >= 8);
    auto events = After(store.get(), 0);
    REQUIRE(events.size() == 12);
    for (size_t i = 0; i < events.size(); ++i) {
      CHECK(events[i].cursor == static_cast<int64_t>(i) + 1);
      CHECK(events[i].event.run_id == "run" + std::to_string(i / 4));
      CHECK(events[i].event.seq == static_cast<int64_t>(i % 4) + 1);
    }
    store->AppendEvent(MakeEvent("run1", "later"));
    REQUIRE(store->Flush().ok());
    auto later = After(store.get(), 12);
    REQUIRE(later.size() == 1);
    CHECK(later[0].cursor == 13);
    CHECK(later[0].event.seq == 5);
    auto ro = SqliteReadOnlyStore::Open(path, 10);
    REQUIRE(ro.ok());
    CHECK((*ro)->ReadEventsAfter(10, "run1", 10)->size() == 1);
    CHECK(*(*ro)->LastEventCursor() == 13);
  }
}

TEST_CASE("a million events migrate in seconds" * doctest::timeout(300)) {
  ScratchDir dir;
  const std::string path = dir.Path("keel.db");
  MakeVersion7(path, 1000, 1000);
  const auto start = std::chrono::steady_clock::now();
  auto store = OpenStore(path, 60);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  MESSAGE("migrated 1,000,000 events in " << seconds << " s");
  CHECK(seconds < 30);  // a shared, loaded machine; about 3 s on an idle one
  CHECK(*store->LastEventCursor() == 1000000);
}

}  // namespace
}  // namespace keel
