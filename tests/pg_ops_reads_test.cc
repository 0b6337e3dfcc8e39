// The PostgreSQL store's event cursor, event pages, state counts and node
// reads (pg_event_cursor.h, pg_node_reads.h) against a real server: what
// each reads, as the SQLite store does; cursors seen in commit order by a
// reader polling while two writers append (no event ever skipped); the last
// cursor never ahead of what has committed; map items paged by index as a
// number.

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <set>
#include <thread>

#include "store/postgres/pg_event_cursor.h"
#include "store/postgres/pg_node_reads.h"
#include "store/postgres/pg_waits.h"
#include "tests/pg_ops_util.h"

namespace keel {
namespace {

using testing::PgConnect;
using testing::PgEvent;
using testing::PgNode;
using testing::PgRun;
using testing::PgValue;
using testing::PutEvents;
using testing::PutNode;
using testing::PutRun;

TEST_CASE("ReadEventsAfter reads by cursor; LastEventCursor never goes back" *
          doctest::timeout(60)) {
  KEEL_PG_DB_OR_SKIP(db, "cursor_reads");
  auto none = pg::LastEventCursor(db);
  REQUIRE_MESSAGE(none.ok(), none.status().message());
  CHECK(*none == 0);
  CHECK(pg::ReadEventsAfter(db, 0, "", 10)->empty());
  PutRun(db, PgRun("a"));
  PutRun(db, PgRun("b"));
  PutEvents(db, {PgEvent("a", "one", "", 1.25), PgEvent("b", "two")});
  PutEvents(db, {PgEvent("a", "three", "n"), PgEvent("b", "four")});

  auto all = pg::ReadEventsAfter(db, 0, "", 100);
  REQUIRE(all.ok());
  REQUIRE(all->size() == 4);
  std::string kinds;
  for (size_t i = 0; i < all->size(); ++i) {
    kinds += all->at(i).event.kind + " ";
    if (i > 0) CHECK(all->at(i).cursor > all->at(i - 1).cursor);
  }
  CHECK(kinds == "one two three four ");
  CHECK(all->at(0).event.ts == 1.25);
  CHECK(all->at(2).event.seq == 2);
  CHECK(all->at(2).event.node == "n");
  auto in_a = pg::ReadEventsAfter(db, all->at(0).cursor, "a", 100);
  REQUIRE(in_a.ok());
  REQUIRE(in_a->size() == 1);
  CHECK(in_a->at(0).event.kind == "three");
  auto limited = pg::ReadEventsAfter(db, 0, "", 1);
  REQUIRE(limited.ok());
  CHECK(limited->size() == 1);
  const int64_t last = all->back().cursor;
  CHECK(*pg::LastEventCursor(db) == last);
  REQUIRE(db.Exec("DELETE FROM events", {}, "deleting").ok());
  CHECK(*pg::LastEventCursor(db) == last);
  PutEvents(db, {PgEvent("a", "five")});
  auto after = pg::ReadEventsAfter(db, last, "", 10);
  REQUIRE(after.ok());
  REQUIRE(after->size() == 1);
  CHECK(after->at(0).cursor > last);
}

TEST_CASE("GetEventsAfter pages one run's events by seq; CountState counts" *
          doctest::timeout(60)) {
  KEEL_PG_DB_OR_SKIP(db, "event_pages");
  PutRun(db, PgRun("r"));
  std::vector<EventRecord> events;
  for (int i = 0; i < 5; ++i) events.push_back(PgEvent("r", "e" + std::to_string(i)));
  PutEvents(db, events);
  auto page = pg::GetEventsAfter(db, "r", 2, 2);
  REQUIRE(page.ok());
  REQUIRE(page->size() == 2);
  CHECK(page->at(0).seq == 3);
  CHECK(page->at(1).kind == "e3");
  CHECK(pg::GetEventsAfter(db, "unknown", 0, 10)->empty());

  PutRun(db, PgRun("q2", 7, RunStatus::kQueued));
  PutRun(db, PgRun("q1", 4.5, RunStatus::kQueued));
  PutRun(db, PgRun("w", 1, RunStatus::kWaiting));
  REQUIRE(pg::SendSignal(db, "w", "go", "{}", 1).ok());
  REQUIRE(pg::SendSignal(db, "w", "go", "{}", 1).ok());
  REQUIRE(pg::TakeSignal(db, "w", "go", "n", 2, 1).ok());
  auto counts = pg::CountState(db);
  REQUIRE_MESSAGE(counts.ok(), counts.status().message());
  using Count = std::pair<std::string, int64_t>;
  CHECK(counts->runs == std::vector<Count>{{"queued", 2}, {"running", 1}, {"waiting", 1}});
  CHECK(counts->oldest_queued_at == 4.5);
  CHECK(counts->signals_pending == 1);
}

TEST_CASE("A reader polling ReadEventsAfter while two writers append skips no event" *
          doctest::timeout(300)) {
  KEEL_PG_DB_OR_SKIP(db, "cursor_order");
  PutRun(db, PgRun("a"));
  PutRun(db, PgRun("b"));
  constexpr int kTransactions = 60;
  std::atomic<int> writers_left{2}, failed{0};
  auto write = [&](const std::string& run_id) {
    auto conn = PgConnect(db_url);
    for (int t = 0; t < kTransactions; ++t) {
      std::vector<EventRecord> batch(static_cast<size_t>(1 + t % 3), PgEvent(run_id, "e"));
      // A pause between taking cursors and committing: without the cursor
      // lock, the other writer's larger cursors would commit first.
      Status s = conn->Transaction(
          [&](pg::Connection& c) {
            Status inserted = pg::InsertEvents(c, &batch);
            if (!inserted.ok()) return inserted;
            auto slept = c.Exec("SELECT pg_sleep($1)", {t % 2 ? "0.002" : "0"}, "pausing");
            return slept.ok() ? Status::Ok() : slept.status();
          },
          "appending");
      if (!s.ok()) ++failed;
    }
    --writers_left;
  };
  std::thread wa(write, "a");
  std::thread wb(write, "b");

  int64_t after = 0;
  std::vector<int64_t> seen;
  bool ordered = true;
  auto poll = [&] {
    auto page = pg::ReadEventsAfter(db, after, "", 50);
    REQUIRE(page.ok());
    for (const auto& e : *page) {
      if (e.cursor <= after) ordered = false;
      after = e.cursor;
      seen.push_back(e.cursor);
    }
    return page->size();
  };
  while (writers_left.load() > 0) poll();
  wa.join();
  wb.join();
  while (poll() > 0) {
  }
  CHECK(failed.load() == 0);
  CHECK(ordered);
  auto all = pg::ReadEventsAfter(db, 0, "", -1);
  REQUIRE(all.ok());
  std::set<int64_t> committed;
  for (const auto& e : *all) committed.insert(e.cursor);
  CHECK(committed.size() == seen.size());
  CHECK(committed == std::set<int64_t>(seen.begin(), seen.end()));
}

TEST_CASE("LastEventCursor waits for an event transaction in progress" * doctest::timeout(60)) {
  KEEL_PG_DB_OR_SKIP(db, "cursor_last");
  PutRun(db, PgRun("r"));
  PutEvents(db, {PgEvent("r", "first")});
  auto writer = PgConnect(db_url);
  REQUIRE(writer->ExecScript("BEGIN", "beginning").ok());
  std::vector<EventRecord> batch{PgEvent("r", "second")};
  REQUIRE(pg::InsertEvents(*writer, &batch).ok());

  auto reader = PgConnect(db_url);
  const int reader_pid = reader->BackendPid();
  std::atomic<bool> done{false};
  int64_t last = -1;
  std::thread read([&] {
    auto got = pg::LastEventCursor(*reader);
    last = got.ok() ? *got : -2;
    done = true;
  });
  // The reader waits on the cursor lock while the writer's cursor is uncommitted.
  bool waiting = false;
  for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
       !waiting && std::chrono::steady_clock::now() < deadline;) {
    waiting = PgValue(db, "SELECT count(*) FROM pg_locks WHERE pid = $1 AND NOT granted",
                      {std::to_string(reader_pid)}) != "0";
  }
  CHECK(waiting);
  CHECK(!done.load());
  REQUIRE(writer->ExecScript("COMMIT", "committing").ok());
  read.join();
  CHECK(last == std::stoll(PgValue(db, "SELECT max(cursor) FROM events")));
}

// Run "r": plain nodes, the items of map "m" (0..11, inserted out of order),
// an item's inner node, a map inside a call, a map whose name holds LIKE's
// wildcards, and an item of a map inside an item.
void PutMapRun(pg::Connection& db) {
  PutRun(db, PgRun("r"));
  PutNode(db, PgNode("r", "start"));
  PutNode(db, PgNode("r", "m", NodeStatus::kRunning));
  for (int i : {10, 9, 2, 11, 0, 1, 3, 4, 5, 6, 7, 8}) {
    PutNode(db, PgNode("r", "m[" + std::to_string(i) + "]",
                       i % 4 == 3 ? NodeStatus::kFailed : NodeStatus::kSucceeded));
  }
  PutNode(db, PgNode("r", "m[3]/inner"));
  PutNode(db, PgNode("r", "c/m[0]"));
  PutNode(db, PgNode("r", "a_b%[0]"));
  PutNode(db, PgNode("r", "aXb%[1]"));
  PutNode(db, PgNode("r", "m[1]/n[0]"));
  PutNode(db, PgNode("r", "end", NodeStatus::kRunning));
}

TEST_CASE("ListMapItems pages a map's items by index as a number, counted in SQL" *
          doctest::timeout(60)) {
  KEEL_PG_DB_OR_SKIP(db, "map_items");
  PutMapRun(db);
  auto first = pg::ListMapItems(db, "r", "m", std::nullopt, 0, 5);
  REQUIRE_MESSAGE(first.ok(), first.status().message());
  CHECK(first->total == 12);
  std::string names;
  for (const auto& n : first->items) names += n.node + " ";
  CHECK(names == "m[0] m[1] m[2] m[3] m[4] ");
  auto tail = pg::ListMapItems(db, "r", "m", std::nullopt, 8, 10);
  REQUIRE(tail.ok());
  names.clear();
  for (const auto& n : tail->items) names += n.node + " ";
  CHECK(names == "m[8] m[9] m[10] m[11] ");
  CHECK(tail->items.front().output_json.value_or("") == R"({"n":"m[8]"})");
  auto failed = pg::ListMapItems(db, "r", "m", NodeStatus::kFailed, 1, 10);
  REQUIRE(failed.ok());
  CHECK(failed->total == 3);
  names.clear();
  for (const auto& n : failed->items) names += n.node + " ";
  CHECK(names == "m[7] m[11] ");
  auto all = pg::ListMapItems(db, "r", "m", std::nullopt, -3, -1);
  REQUIRE(all.ok());
  CHECK(all->items.size() == 12);
  auto wild = pg::ListMapItems(db, "r", "a_b%", std::nullopt, 0, 10);
  REQUIRE(wild.ok());
  CHECK(wild->total == 1);
  auto inner = pg::ListMapItems(db, "r", "c/m", std::nullopt, 0, 10);
  REQUIRE(inner.ok());
  CHECK(inner->total == 1);
  CHECK(pg::ListMapItems(db, "r", "none", std::nullopt, 0, 10)->total == 0);
}

TEST_CASE("CountMapItems counts every map's items by status; GetRunOutline leaves items out" *
          doctest::timeout(60)) {
  KEEL_PG_DB_OR_SKIP(db, "map_counts");
  PutMapRun(db);
  auto counts = pg::CountMapItems(db, "r");
  REQUIRE_MESSAGE(counts.ok(), counts.status().message());
  std::string text;
  for (const auto& c : *counts) {
    text +=
        c.map + ":" + std::string(NodeStatusName(c.status)) + "=" + std::to_string(c.count) + " ";
  }
  CHECK(text == "aXb%:succeeded=1 a_b%:succeeded=1 c/m:succeeded=1 m:failed=3 m:succeeded=9 ");

  PutEvents(db, {PgEvent("r", "node_started", "start"), PgEvent("r", "llm_call", "m[2]"),
                 PgEvent("r", "node_started", "m[2]"), PgEvent("r", "run_note")});
  auto outline = pg::GetRunOutline(db, "r");
  REQUIRE_MESSAGE(outline.ok(), outline.status().message());
  std::string nodes;
  for (const auto& n : outline->nodes) nodes += n.node + " ";
  CHECK(nodes == "start m end ");
  std::string events;
  for (const auto& e : outline->events) events += std::to_string(e.seq) + e.kind + " ";
  CHECK(events == "1node_started 2llm_call 4run_note ");
  CHECK(outline->items.size() == counts->size());
}

TEST_CASE("GetNode, GetNodesInStatus and GetNodeEvents" * doctest::timeout(60)) {
  KEEL_PG_DB_OR_SKIP(db, "node_reads");
  PutMapRun(db);
  auto node = pg::GetNode(db, "r", "m[3]/inner");
  REQUIRE(node.ok());
  REQUIRE(node->has_value());
  CHECK((*node)->status == NodeStatus::kSucceeded);
  CHECK((*node)->started_at == 1.5);
  CHECK((*node)->script_version == 1);
  CHECK(!pg::GetNode(db, "r", "m[99]")->has_value());
  CHECK(!pg::GetNode(db, "other", "start")->has_value());

  auto running = pg::GetNodesInStatus(db, "r", NodeStatus::kRunning, 0);
  REQUIRE(running.ok());
  REQUIRE(running->size() == 2);
  CHECK(running->at(0).node == "m");
  CHECK(running->at(1).node == "end");
  // A record saved again keeps its first-insert place.
  NodeRecord again = PgNode("r", "m", NodeStatus::kRunning);
  again.attempts = 2;
  PutNode(db, again);
  auto one = pg::GetNodesInStatus(db, "r", NodeStatus::kRunning, 1);
  REQUIRE(one.ok());
  REQUIRE(one->size() == 1);
  CHECK(one->at(0).node == "m");
  CHECK(one->at(0).attempts == 2);

  std::vector<EventRecord> events;
  for (int i = 0; i < 5; ++i) events.push_back(PgEvent("r", "e" + std::to_string(i), "m[2]"));
  events.push_back(PgEvent("r", "other", "m[20]"));
  PutEvents(db, events);
  auto last = pg::GetNodeEvents(db, "r", "m[2]", 2);
  REQUIRE(last.ok());
  REQUIRE(last->size() == 2);
  CHECK(last->at(0).kind == "e3");
  CHECK(last->at(1).kind == "e4");
  CHECK(pg::GetNodeEvents(db, "r", "m[2]", 0)->size() == 5);
}

}  // namespace
}  // namespace keel
