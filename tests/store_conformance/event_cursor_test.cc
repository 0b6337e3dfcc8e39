// The global event cursor: ReadEventsAfter and LastEventCursor across two
// stores (cursors grow in commit order), a limit and one run's events, and
// cursors never given again after gc.

#include <atomic>
#include <thread>

#include "tests/store_conformance/conformance.h"

namespace keel::conformance {
namespace {

KEEL_CONFORMANCE_SUITE;

std::vector<Store::CursorEvent> After(Store& store, int64_t after, const std::string& run = "",
                                      int limit = 1000) {
  return Must(store.ReadEventsAfter(after, run, limit));
}

TEST_CASE("cursors grow in commit order across two stores" * doctest::timeout(60)) {
  KEEL_FRESH_BACKEND(db);
  auto a = db->Open();
  auto b = db->OpenSecond();
  Create(*a, "ra");
  Create(*a, "rb");
  CHECK(Must(a->LastEventCursor()) == 0);
  CHECK(After(*a, 0).empty());
  for (int i = 0; i < 5; ++i) {
    a->AppendEvent(MakeEvent("ra", "a" + std::to_string(i)));
    Flushed(*a);
    b->AppendEvent(MakeEvent("rb", "b" + std::to_string(i)));
    Flushed(*b);
  }
  auto all = After(*b, 0);
  REQUIRE(all.size() == 10);
  int64_t first = all[0].cursor;
  CHECK(first >= 1);
  for (size_t i = 0; i < all.size(); ++i) {
    if (i > 0) CHECK(all[i].cursor > all[i - 1].cursor);
    CHECK(all[i].event.kind == std::string(i % 2 ? "b" : "a") + std::to_string(i / 2));
    CHECK(all[i].event.seq == static_cast<int64_t>(i / 2) + 1);  // per run, unchanged
    CHECK(all[i].event.run_id == (i % 2 ? "rb" : "ra"));
    CHECK(all[i].event.ts == 3.0);
  }
  CHECK(Must(a->LastEventCursor()) == all.back().cursor);

  SUBCASE("a limit, and reading on from the last cursor") {
    auto head = After(*a, 0, "", 4);
    REQUIRE(head.size() == 4);
    auto rest = After(*a, head.back().cursor);
    REQUIRE(rest.size() == 6);
    CHECK(rest.front().cursor == all[4].cursor);
  }
  SUBCASE("one run's events only") {
    auto rb = After(*a, all[2].cursor, "rb");
    REQUIRE(rb.size() == 4);
    for (const auto& e : rb) CHECK(e.event.run_id == "rb");
    CHECK(rb.front().cursor == all[3].cursor);
    CHECK(After(*a, 0, "nope").empty());
  }
}

TEST_CASE("events committed by concurrent stores are all read, in cursor order, none skipped" *
          doctest::timeout(180)) {
  KEEL_FRESH_BACKEND(db);
  auto a = db->Open();
  auto b = db->OpenSecond();
  auto reader = db->OpenSecond();
  Create(*a, "ra");
  Create(*a, "rb");
  constexpr int kEach = 200;
  std::atomic<bool> done{false};
  auto write = [&](Store* store, const std::string& run) {
    for (int i = 0; i < kEach; ++i) {
      store->AppendEvent(MakeEvent(run, "e", std::to_string(i)));
      if (i % 10 == 0) (void)store->Flush();
    }
    (void)store->Flush();
  };
  // A live reader that follows the cursor must see every event once: a
  // cursor given to a transaction that commits later would be skipped.
  std::vector<Store::CursorEvent> seen;
  Status read_error;
  std::thread follow([&] {
    int64_t cursor = 0;
    for (;;) {
      bool finished = done;
      auto page = reader->ReadEventsAfter(cursor, "", 50);
      if (!page.ok()) {
        read_error = page.status();
        return;
      }
      for (auto& e : *page) {
        cursor = e.cursor;
        seen.push_back(std::move(e));
      }
      if (finished && page->empty()) return;
    }
  });
  std::thread ta(write, a.get(), "ra");
  std::thread tb(write, b.get(), "rb");
  ta.join();
  tb.join();
  done = true;
  follow.join();
  CHECK_MESSAGE(read_error.ok(), read_error.ToString());
  CHECK(seen.size() == 2 * kEach);
  std::vector<int> next(2, 0);
  int wrong = 0;
  for (size_t i = 0; i < seen.size(); ++i) {
    if (i > 0 && seen[i].cursor <= seen[i - 1].cursor) ++wrong;
    int& n = next[seen[i].event.run_id == "ra" ? 0 : 1];
    if (std::stoi(seen[i].event.data_json) != n++) ++wrong;
  }
  CHECK(wrong == 0);
}

TEST_CASE("gc never lets a cursor be given again" * doctest::timeout(60)) {
  KEEL_FRESH_BACKEND(db);
  auto store = db->Open();
  Create(*store, "old");
  for (int i = 0; i < 3; ++i) store->AppendEvent(MakeEvent("old", "e"));
  store->FinishRun("old", RunStatus::kSucceeded, "", 2);
  Flushed(*store);
  int64_t last = Must(store->LastEventCursor());
  CHECK(last >= 3);
  REQUIRE(Must(store->DeleteFinishedBefore(100)) == 1);
  CHECK(After(*store, 0).empty());
  CHECK(Must(store->LastEventCursor()) == last);
  Create(*store, "new");
  store->AppendEvent(MakeEvent("new", "e"));
  Flushed(*store);
  auto events = After(*store, 0);
  REQUIRE(events.size() == 1);
  CHECK(events[0].cursor > last);
  // A cursor older than what gc kept reads on from what exists.
  CHECK(After(*store, 1).size() == 1);
  CHECK(Must(db->OpenSecond()->LastEventCursor()) == events[0].cursor);
}

}  // namespace
}  // namespace keel::conformance
