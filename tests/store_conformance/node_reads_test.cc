// The dashboard's node reads: GetNode, GetNodesInStatus, GetNodeEvents, a
// map's items by index (ListMapItems, CountMapItems) and GetRunOutline.

#include <map>
#include <tuple>

#include "tests/store_conformance/conformance.h"

namespace keel::conformance {
namespace {

KEEL_CONFORMANCE_SUITE;

// Run "r1": plain nodes, map "m" with 12 items (some failed), their inner
// nodes, a map "c/m" inside a composite, a map inside an item, and nodes
// whose names only look like items of "m".
void MakeMapRun(Store& store) {
  Create(store, "r1");
  store.SaveNode(MakeNode("r1", "start"));
  for (int i = 11; i >= 0; --i) {  // inserted out of index order
    const std::string item = "m[" + std::to_string(i) + "]";
    store.SaveNode(MakeNode("r1", item, i % 4 == 3 ? NodeStatus::kFailed : NodeStatus::kSucceeded));
    store.SaveNode(MakeNode("r1", item + "/inner"));
  }
  store.SaveNode(MakeNode("r1", "m[3]/sub[0]"));
  store.SaveNode(MakeNode("r1", "mm[1]"));
  store.SaveNode(MakeNode("r1", "m2[1]"));
  store.SaveNode(MakeNode("r1", "c/fetch", NodeStatus::kRunning));
  store.SaveNode(MakeNode("r1", "c/m[0]", NodeStatus::kRunning));
  store.SaveNode(MakeNode("r1", "c/m[1]"));
  store.SaveNode(MakeNode("r1", "end", NodeStatus::kPending));
  store.AppendEvent(MakeEvent("r1", "run_started"));
  store.AppendEvent(MakeEvent("r1", "node_started", "{}", "start"));
  store.AppendEvent(MakeEvent("r1", "node_succeeded", "{}", "start"));
  store.AppendEvent(MakeEvent("r1", "node_started", "{}", "m[3]"));
  store.AppendEvent(MakeEvent("r1", "llm_call", R"({"prompt_tokens":1})", "m[3]"));
  store.AppendEvent(MakeEvent("r1", "fallback_event", R"({"event":"llm_call"})", "m[4]/inner"));
  store.AppendEvent(MakeEvent("r1", "node_failed", "{}", "m[3]"));
  store.AppendEvent(MakeEvent("r1", "node_started", "{}", "c/fetch"));
  Flushed(store);
}

TEST_CASE("GetNode reads one record by its exact name" * doctest::timeout(60)) {
  KEEL_FRESH_BACKEND(db);
  auto store = db->Open();
  MakeMapRun(*store);
  auto m3 = Must(store->GetNode("r1", "m[3]"));
  REQUIRE(m3.has_value());
  CHECK(m3->node == "m[3]");
  CHECK(m3->run_id == "r1");
  CHECK(m3->status == NodeStatus::kFailed);
  auto fetch = Must(store->GetNode("r1", "c/fetch"));
  REQUIRE(fetch.has_value());
  CHECK(fetch->status == NodeStatus::kRunning);
  CHECK_FALSE(Must(store->GetNode("r1", "m[")).has_value());
  CHECK_FALSE(Must(store->GetNode("r1", "c/")).has_value());
  CHECK_FALSE(Must(store->GetNode("r1", "nope")).has_value());
  CHECK_FALSE(Must(store->GetNode("r2", "start")).has_value());
}

TEST_CASE("GetNodesInStatus reads a status's records in first-insert order" *
          doctest::timeout(60)) {
  KEEL_FRESH_BACKEND(db);
  auto store = db->Open();
  MakeMapRun(*store);
  CHECK(Names(Must(store->GetNodesInStatus("r1", NodeStatus::kFailed, 0))) ==
        std::vector<std::string>{"m[11]", "m[7]", "m[3]"});
  CHECK(Names(Must(store->GetNodesInStatus("r1", NodeStatus::kFailed, 2))) ==
        std::vector<std::string>{"m[11]", "m[7]"});
  CHECK(Names(Must(store->GetNodesInStatus("r1", NodeStatus::kRunning, -1))) ==
        std::vector<std::string>{"c/fetch", "c/m[0]"});
  CHECK(Must(store->GetNodesInStatus("r1", NodeStatus::kWaiting, 0)).empty());
  CHECK(Must(store->GetNodesInStatus("r2", NodeStatus::kFailed, 0)).empty());
  // A record saved again keeps its place.
  store->SaveNode(MakeNode("r1", "m[11]", NodeStatus::kFailed));
  Flushed(*store);
  CHECK(Names(Must(store->GetNodesInStatus("r1", NodeStatus::kFailed, 1))) ==
        std::vector<std::string>{"m[11]"});
}

TEST_CASE("GetNodeEvents reads a node's last events in seq order" * doctest::timeout(60)) {
  KEEL_FRESH_BACKEND(db);
  auto store = db->Open();
  MakeMapRun(*store);
  CHECK(Kinds(Must(store->GetNodeEvents("r1", "m[3]", 0))) ==
        std::vector<std::string>{"node_started", "llm_call", "node_failed"});
  auto last_two = Must(store->GetNodeEvents("r1", "m[3]", 2));
  CHECK(Kinds(last_two) == std::vector<std::string>{"llm_call", "node_failed"});
  REQUIRE(last_two.size() == 2);
  CHECK(last_two[0].seq == 5);
  CHECK(last_two[0].node == "m[3]");
  CHECK(Kinds(Must(store->GetNodeEvents("r1", "", 0))) == std::vector<std::string>{"run_started"});
  CHECK(Must(store->GetNodeEvents("r1", "m[", 0)).empty());
  CHECK(Must(store->GetNodeEvents("r1", "end", 0)).empty());
}

TEST_CASE("ListMapItems pages a map's items by numeric index, filtered by status" *
          doctest::timeout(60)) {
  KEEL_FRESH_BACKEND(db);
  auto store = db->Open();
  MakeMapRun(*store);
  auto first = Must(store->ListMapItems("r1", "m", std::nullopt, 0, 5));
  CHECK(first.total == 12);
  CHECK(Names(first.items) == std::vector<std::string>{"m[0]", "m[1]", "m[2]", "m[3]", "m[4]"});
  auto rest = Must(store->ListMapItems("r1", "m", std::nullopt, 8, 5));
  CHECK(rest.total == 12);
  CHECK(Names(rest.items) == std::vector<std::string>{"m[8]", "m[9]", "m[10]", "m[11]"});
  CHECK(rest.items[0].status == NodeStatus::kSucceeded);
  CHECK(rest.items[0].output_json == MakeNode("r1", "m[8]").output_json);
  auto failed = Must(store->ListMapItems("r1", "m", NodeStatus::kFailed, 1, 10));
  CHECK(failed.total == 3);
  CHECK(Names(failed.items) == std::vector<std::string>{"m[7]", "m[11]"});
  auto past = Must(store->ListMapItems("r1", "m", std::nullopt, 12, 5));
  CHECK(past.total == 12);
  CHECK(past.items.empty());
  auto inner = Must(store->ListMapItems("r1", "c/m", std::nullopt, 0, 10));
  CHECK(inner.total == 2);
  CHECK(Names(inner.items) == std::vector<std::string>{"c/m[0]", "c/m[1]"});
  auto nested = Must(store->ListMapItems("r1", "m[3]/sub", std::nullopt, 0, 10));
  CHECK(Names(nested.items) == std::vector<std::string>{"m[3]/sub[0]"});
  CHECK(Must(store->ListMapItems("r1", "none", std::nullopt, 0, 10)).total == 0);
  CHECK(Must(store->ListMapItems("r2", "m", std::nullopt, 0, 10)).total == 0);
}

// substr counts characters, not bytes, in both databases.
TEST_CASE("a map whose name is not ASCII lists its items" * doctest::timeout(60)) {
  KEEL_FRESH_BACKEND(db);
  auto store = db->Open();
  Create(*store, "r1");
  for (const char* name : {"ünï🙂[1]", "ünï🙂[0]", "ünï🙂[1]/inner", "ünï🙂x[2]"}) {
    store->SaveNode(MakeNode("r1", name));
  }
  Flushed(*store);
  auto page = Must(store->ListMapItems("r1", "ünï🙂", std::nullopt, 0, 10));
  CHECK(page.total == 2);
  CHECK(Names(page.items) == std::vector<std::string>{"ünï🙂[0]", "ünï🙂[1]"});
}

std::map<std::pair<std::string, NodeStatus>, int64_t> CountsOf(
    const std::vector<Store::ItemCount>& counts) {
  std::map<std::pair<std::string, NodeStatus>, int64_t> by;
  for (const auto& c : counts) by[{c.map, c.status}] += c.count;
  return by;
}

TEST_CASE("CountMapItems counts every map's items by status, not items inside items" *
          doctest::timeout(60)) {
  KEEL_FRESH_BACKEND(db);
  auto store = db->Open();
  MakeMapRun(*store);
  auto counts = CountsOf(Must(store->CountMapItems("r1")));
  std::map<std::pair<std::string, NodeStatus>, int64_t> expected{
      {{"m", NodeStatus::kSucceeded}, 9}, {{"m", NodeStatus::kFailed}, 3},
      {{"mm", NodeStatus::kSucceeded}, 1}, {{"m2", NodeStatus::kSucceeded}, 1},
      {{"c/m", NodeStatus::kRunning}, 1},  {{"c/m", NodeStatus::kSucceeded}, 1}};
  CHECK(counts == expected);
  CHECK(Must(store->CountMapItems("r2")).empty());
  // A map's name may be any text.
  store->SaveNode(MakeNode("r1", "ünï🙂[0]"));
  store->SaveNode(MakeNode("r1", "ünï🙂[10]"));
  Flushed(*store);
  CHECK(CountsOf(Must(store->CountMapItems("r1")))[{"ünï🙂", NodeStatus::kSucceeded}] == 2);
}

TEST_CASE("GetRunOutline reads a run without its items' records, in one snapshot" *
          doctest::timeout(60)) {
  KEEL_FRESH_BACKEND(db);
  auto store = db->Open();
  MakeMapRun(*store);
  auto outline = Must(db->OpenSecond()->GetRunOutline("r1"));
  CHECK(Names(outline.nodes) == std::vector<std::string>{"start", "c/fetch", "end"});
  CHECK(Kinds(outline.events) == std::vector<std::string>{"run_started", "node_started",
                                                          "node_succeeded", "llm_call",
                                                          "fallback_event", "node_started"});
  for (size_t i = 1; i < outline.events.size(); ++i) {
    CHECK(outline.events[i - 1].seq < outline.events[i].seq);
  }
  CHECK(CountsOf(outline.items) == CountsOf(Must(store->CountMapItems("r1"))));
  auto none = Must(store->GetRunOutline("r2"));
  CHECK(none.nodes.empty());
  CHECK(none.events.empty());
  CHECK(none.items.empty());
}

}  // namespace
}  // namespace keel::conformance
