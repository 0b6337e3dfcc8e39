// The rule of `keel resume --from` and `keel fork --from`: which nodes are
// downstream, which records belong to them, which checkpoints they lose.

#include "engine/rerun.h"

#include <doctest/doctest.h>

#include "engine/run_history.h"
#include "tests/fakes/node_spec.h"

namespace keel {
namespace {

using testing::Node;

// a -> b -> d, a -> c -> d, e alone, f after c.
WorkflowSpec Diamond() {
  WorkflowSpec wf;
  wf.name = "diamond";
  wf.nodes = {Node("a", {}, nullptr),         Node("b", {"a"}, nullptr), Node("c", {"a"}, nullptr),
              Node("d", {"b", "c"}, nullptr), Node("e", {}, nullptr),    Node("f", {"c"}, nullptr)};
  return wf;
}

TEST_CASE("NodesFrom is the node and everything downstream of it, in workflow order") {
  WorkflowSpec wf = Diamond();
  CHECK(*NodesFrom(wf, "a") == std::vector<std::string>{"a", "b", "c", "d", "f"});
  CHECK(*NodesFrom(wf, "c") == std::vector<std::string>{"c", "d", "f"});
  CHECK(*NodesFrom(wf, "b") == std::vector<std::string>{"b", "d"});
  CHECK(*NodesFrom(wf, "d") == std::vector<std::string>{"d"});
  CHECK(*NodesFrom(wf, "e") == std::vector<std::string>{"e"});
}

TEST_CASE("NodesFrom an unknown node fails with did-you-mean") {
  WorkflowSpec wf = Diamond();
  wf.nodes[0].name = "fetch";
  wf.nodes[1].after = {"fetch"};
  wf.nodes[2].after = {"fetch"};
  auto missing = NodesFrom(wf, "fetchh");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().kind() == ErrorKind::kPermanent);
  CHECK(missing.status().message() ==
        "no node 'fetchh' in workflow 'diamond' (did you mean 'fetch'?)");
  CHECK(NodesFrom(wf, "zzzzzz").status().message() == "no node 'zzzzzz' in workflow 'diamond'");
}

TEST_CASE("a record belongs to a node by its name or its inner-node prefixes") {
  const std::unordered_set<std::string> nodes = {"m", "c", "r", "a/b"};
  CHECK(RecordOfAny("m", nodes));
  CHECK(RecordOfAny("m[3]", nodes));        // map item
  CHECK(RecordOfAny("c/fetch", nodes));     // call's inner node
  CHECK(RecordOfAny("r#2/review", nodes));  // loop iteration's node
  CHECK(RecordOfAny("m[3]/x", nodes));
  CHECK(RecordOfAny("a/b[1]", nodes));  // a name holding '/' itself
  CHECK_FALSE(RecordOfAny("mm", nodes));
  CHECK_FALSE(RecordOfAny("mx[1]", nodes));
  CHECK_FALSE(RecordOfAny("cat/fetch", nodes));
  CHECK_FALSE(RecordOfAny("a", nodes));
  CHECK_FALSE(RecordOfAny("a/c", nodes));
  CHECK_FALSE(RecordOfAny("x", {}));
}

TEST_CASE("a rerun event drops the earlier checkpoints of its nodes, not later ones") {
  auto checkpoint = [](const std::string& node, const std::string& data) {
    return EventRecord{"r", 0, 1, node, "checkpoint", data};
  };
  std::vector<EventRecord> events = {
      checkpoint("b", R"({"step":1})"),
      checkpoint("b[1]", R"({"step":1})"),
      checkpoint("e", R"({"step":1})"),
      EventRecord{"r", 0, 1, "b", "fallback_event",
                  R"({"fallback":"fb","node":"x","event":"checkpoint","data":{"step":1}})"},
      EventRecord{"r", 0, 2, "", kRerunEventKind, RerunEventData("b", {"b", "d"})},
      checkpoint("d", R"({"step":2})"),
  };
  RunHistory history = ReadRunHistory(events);
  CHECK_FALSE(history.journals.count("b"));
  CHECK_FALSE(history.journals.count("b[1]"));
  CHECK_FALSE(history.journals.count(FallbackJournalKey("b", "fb", "x")));
  CHECK(history.journals.count("e"));
  REQUIRE(history.journals.count("d"));
  CHECK(history.journals["d"].size() == 1);
}

TEST_CASE("the history counts attempts on and keeps a wait's due time until it fails or reruns") {
  auto event = [](const std::string& node, const std::string& kind, const std::string& data) {
    return EventRecord{"r", 0, 0, node, kind, data};
  };
  std::vector<EventRecord> events = {
      event("a", "node_started", R"({"attempt":1})"),
      event("a", "node_started", R"({"attempt":3})"),
      event("a", "node_started", R"({"attempt":2})"),
      event("m[4]", "node_started", R"({"attempt":2})"),
      event("w", "wait_started", R"({"signal":"go","due":100})"),
      event("t", "wait_started", R"({"due":50})"),
      event("t", "node_failed", R"({"kind":"timeout"})"),
      event("x", "wait_started", R"({"due":70})"),
      event("x", "node_started", R"({"attempt":1})"),
      event("", kRerunEventKind, RerunEventData("x", {"x"})),
  };
  RunHistory history = ReadRunHistory(events);
  CHECK(history.attempts == std::unordered_map<std::string, int>{{"a", 3}, {"m[4]", 2}});
  // A wait that failed is reached afresh; so is one that runs again.
  CHECK(history.wait_due == std::unordered_map<std::string, double>{{"w", 100}});
}

TEST_CASE("rerun event data round-trips and bad data names nothing") {
  auto nodes = RerunEventNodes(RerunEventData("x", {"x", "y[1]"}));
  CHECK(nodes == std::unordered_set<std::string>{"x", "y[1]"});
  CHECK(RerunEventNodes("not json").empty());
  CHECK(RerunEventNodes(R"({"nodes": 3})").empty());
}

}  // namespace
}  // namespace keel
