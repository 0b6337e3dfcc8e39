// Reads: ListRuns (newest first; status, workflow, limit, before and since;
// nodes done and usage), GetEventsAfter pages, DataVersion, CountState.

#include "tests/store_conformance/conformance.h"

namespace keel::conformance {
namespace {

KEEL_CONFORMANCE_SUITE;

std::vector<std::string> Ids(const std::vector<RunListing>& listed) {
  std::vector<std::string> ids;
  for (const RunListing& l : listed) ids.push_back(l.run.id);
  return ids;
}

std::vector<std::string> Listed(Store& store, const RunFilter& filter) {
  return Ids(Must(store.ListRuns(filter)));
}

RunFilter Filter(std::optional<RunStatus> status, int limit) {
  RunFilter filter;
  filter.status = status;
  filter.limit = limit;
  return filter;
}

TEST_CASE("ListRuns lists newest first, filters by status, limits and counts nodes done" *
          doctest::timeout(60)) {
  KEEL_FRESH_BACKEND(db);
  auto store = db->Open();
  for (int i = 1; i <= 5; ++i) Create(*store, "run" + std::to_string(i), i);
  store->FinishRun("run2", RunStatus::kSucceeded, "", 10);
  store->FinishRun("run4", RunStatus::kSucceeded, "", 11);
  store->FinishRun("run5", RunStatus::kFailed, "x", 12);
  store->SaveNode(MakeNode("run4", "a", NodeStatus::kSucceeded));
  store->SaveNode(MakeNode("run4", "b", NodeStatus::kSkipped));
  store->SaveNode(MakeNode("run4", "c", NodeStatus::kFallback));
  store->SaveNode(MakeNode("run4", "d", NodeStatus::kFailed));
  store->SaveNode(MakeNode("run4", "e", NodeStatus::kRunning));
  Flushed(*store);

  auto all = Must(store->ListRuns(Filter(std::nullopt, 0)));
  CHECK(Ids(all) == std::vector<std::string>{"run5", "run4", "run3", "run2", "run1"});
  REQUIRE(all.size() == 5);
  CHECK(all[1].nodes_done == 3);
  CHECK(all[0].nodes_done == 0);
  CHECK(all[0].run.script_text.empty());
  CHECK(all[0].run.workflow == "wf");
  CHECK(all[0].run.status == RunStatus::kFailed);
  CHECK(all[0].run.error == "x");
  CHECK(all[0].run.created_at == 5);
  CHECK(Listed(*store, Filter(std::nullopt, 2)) == std::vector<std::string>{"run5", "run4"});
  CHECK(Listed(*store, Filter(std::nullopt, -1)).size() == 5);
  CHECK(Listed(*store, Filter(RunStatus::kSucceeded, 20)) ==
        std::vector<std::string>{"run4", "run2"});
  CHECK(Listed(*store, Filter(RunStatus::kRunning, 20)) ==
        std::vector<std::string>{"run3", "run1"});
  CHECK(Listed(*store, Filter(RunStatus::kDegraded, 20)).empty());
}

TEST_CASE("ListRuns pages with before, and filters by workflow and since" *
          doctest::timeout(60)) {
  KEEL_FRESH_BACKEND(db);
  auto store = db->Open();
  for (int i = 1; i <= 6; ++i) {
    RunRecord run = MakeRun("r" + std::to_string(i), 100 + i);
    run.workflow = i % 2 ? "odd" : "even";
    REQUIRE_OK(store->CreateRun(run));
  }
  // Two runs created in the same second list in creation order, newest first.
  Create(*store, "same-a", 200);
  Create(*store, "same-b", 200);

  RunFilter page = Filter(std::nullopt, 3);
  CHECK(Listed(*store, page) == std::vector<std::string>{"same-b", "same-a", "r6"});
  page.before = "r6";
  CHECK(Listed(*store, page) == std::vector<std::string>{"r5", "r4", "r3"});
  page.before = "same-b";
  page.limit = 1;
  CHECK(Listed(*store, page) == std::vector<std::string>{"same-a"});
  page.before = "r1";
  CHECK(Listed(*store, page).empty());
  page.before = "no-such-run";
  CHECK(Listed(*store, page).empty());

  RunFilter odd = Filter(std::nullopt, 0);
  odd.workflow = "odd";
  CHECK(Listed(*store, odd) == std::vector<std::string>{"r5", "r3", "r1"});
  odd.before = "r5";
  CHECK(Listed(*store, odd) == std::vector<std::string>{"r3", "r1"});
  odd.workflow = "none";
  CHECK(Listed(*store, odd).empty());

  RunFilter since = Filter(std::nullopt, 0);
  since.since = 104;
  CHECK(Listed(*store, since) ==
        std::vector<std::string>{"same-b", "same-a", "r6", "r5", "r4"});
  since.workflow = "even";
  since.status = RunStatus::kRunning;
  CHECK(Listed(*store, since) == std::vector<std::string>{"r6", "r4"});
  since.status = RunStatus::kFailed;
  CHECK(Listed(*store, since).empty());
}

TEST_CASE("ListRuns sums the usage of llm_call events, wrapped ones too, skipping bad JSON" *
          doctest::timeout(60)) {
  KEEL_FRESH_BACKEND(db);
  auto store = db->Open();
  Create(*store, "good", 1);
  Create(*store, "bad", 2);
  store->AppendEvent(
      {"good", 0, 3, "a", "llm_call", R"({"prompt_tokens":10,"completion_tokens":5,"cost":0.5})"});
  store->AppendEvent({"good", 0, 4, "f", "fallback_event",
                      R"({"event":"llm_call","data":{"prompt_tokens":1,"completion_tokens":2,)"
                      R"("cost":0.25}})"});
  store->AppendEvent({"good", 0, 5, "a", "node_succeeded", R"({"prompt_tokens":1000})"});
  // What an older keel wrote for a cost that was not finite.
  store->AppendEvent({"bad", 0, 3, "a", "llm_call", R"({"prompt_tokens":7,"cost":,"seconds":1})"});
  store->AppendEvent({"bad", 0, 4, "a", "llm_call", R"({"prompt_tokens":3,"cost":1})"});
  Flushed(*store);
  auto listed = Must(store->ListRuns({}));
  REQUIRE(listed.size() == 2);
  CHECK(listed[0].run.id == "bad");
  CHECK(listed[0].usage.prompt_tokens == 3);  // the unreadable event counts nothing
  CHECK(listed[0].usage.completion_tokens == 0);
  CHECK(listed[0].usage.cost == 1);
  CHECK(listed[1].usage.prompt_tokens == 11);
  CHECK(listed[1].usage.completion_tokens == 7);
  CHECK(listed[1].usage.cost == 0.75);
}

TEST_CASE("GetEventsAfter reads one run's events a page at a time" * doctest::timeout(60)) {
  KEEL_FRESH_BACKEND(db);
  auto store = db->Open();
  Create(*store, "r1");
  Create(*store, "r2");
  for (int i = 1; i <= 7; ++i) {
    store->AppendEvent(MakeEvent("r1", "e" + std::to_string(i)));
    store->AppendEvent(MakeEvent("r2", "other"));
  }
  Flushed(*store);
  auto first = Must(store->GetEventsAfter("r1", 0, 3));
  CHECK(Kinds(first) == std::vector<std::string>{"e1", "e2", "e3"});
  CHECK(first.back().seq == 3);
  auto second = Must(store->GetEventsAfter("r1", first.back().seq, 3));
  CHECK(Kinds(second) == std::vector<std::string>{"e4", "e5", "e6"});
  auto last = Must(store->GetEventsAfter("r1", 6, 3));
  CHECK(Kinds(last) == std::vector<std::string>{"e7"});
  CHECK(last[0].run_id == "r1");
  CHECK(Must(store->GetEventsAfter("r1", 7, 3)).empty());
  CHECK(Must(store->GetEventsAfter("nope", 0, 3)).empty());
}

TEST_CASE("DataVersion changes after a commit by this store or another" * doctest::timeout(60)) {
  KEEL_FRESH_BACKEND(db);
  auto store = db->Open();
  auto other = db->OpenSecond();
  Create(*store, "r1");
  int64_t before = Must(store->DataVersion());
  CHECK(Must(store->DataVersion()) == before);  // nothing committed in between
  other->AppendEvent(MakeEvent("r1", "e"));
  Flushed(*other);
  int64_t after_other = Must(store->DataVersion());
  CHECK(after_other != before);
  store->SaveNode(MakeNode("r1", "a"));
  Flushed(*store);
  int64_t after_own = Must(store->DataVersion());
  CHECK(after_own != after_other);
  REQUIRE(other->UpdateBreaker("k", [](BreakerSnapshot& s) { s.calls = 1; }).ok());
  CHECK(Must(store->DataVersion()) != after_own);
}

TEST_CASE("CheckReady is ok on a store whose database answers" * doctest::timeout(60)) {
  KEEL_FRESH_BACKEND(db);
  auto store = db->Open();
  CHECK_OK(store->CheckReady());
  Create(*store, "r1");
  CHECK_OK(db->OpenSecond()->CheckReady());
}

TEST_CASE("CountState counts runs by status, the oldest queued run and pending signals" *
          doctest::timeout(60)) {
  KEEL_FRESH_BACKEND(db);
  auto store = db->Open();
  auto empty = Must(store->CountState());
  CHECK(empty.oldest_queued_at == 0);
  CHECK(empty.signals_pending == 0);
  for (const auto& [name, count] : empty.runs) CHECK(count == 0);

  REQUIRE_OK(store->CreateRun(QueuedRun("q1", 30)));
  REQUIRE_OK(store->CreateRun(QueuedRun("q2", 20)));
  Create(*store, "r1");
  Create(*store, "r2");
  Create(*store, "done");
  store->FinishRun("done", RunStatus::kSucceeded, "", 5);
  store->FinishRun("r2", RunStatus::kWaiting, "", 5);
  Flushed(*store);
  REQUIRE_OK(store->SendSignal("r2", "go", "1", 6));
  REQUIRE_OK(store->SendSignal("r2", "go", "2", 6));
  REQUIRE_OK(store->SendSignal("r1", "go", "3", 6));
  REQUIRE_OK(store->TakeSignal("r1", "go", "w", 7));

  auto counts = Must(db->OpenSecond()->CountState());
  std::vector<std::pair<std::string, int64_t>> nonzero;
  for (const auto& row : counts.runs) {
    if (row.second != 0) nonzero.push_back(row);
  }
  CHECK(nonzero == std::vector<std::pair<std::string, int64_t>>{
                       {"queued", 2}, {"running", 1}, {"succeeded", 1}, {"waiting", 1}});
  for (size_t i = 1; i < counts.runs.size(); ++i) {
    CHECK(counts.runs[i - 1].first < counts.runs[i].first);  // by name
  }
  CHECK(counts.oldest_queued_at == 20);
  CHECK(counts.signals_pending == 2);
}

}  // namespace
}  // namespace keel::conformance
