// keel.loop and keel.call in the engine, on a fake clock: iterations until
// done_when or max_iterations, a resume mid-loop, a call's params and
// records; and SplitJsonArray, which map and loop outputs rest on.
#include "engine/dynamic_node.h"

#include <doctest/doctest.h>

#include "tests/fakes/dynamic_nodes.h"

namespace keel {
namespace {

using testing::Fixture;
using testing::FnFunction;
using testing::ItemBody;
using testing::Node;
using testing::One;
using testing::ParamsBody;
using testing::SubNode;
using testing::Value;

}  // namespace

TEST_CASE("loop: runs iterations until done_when, recording inner nodes per iteration" *
          doctest::timeout(60)) {
  Fixture f;
  auto inner = std::make_shared<ParamsBody>();
  WorkflowSpec sub;
  sub.name = "round";
  sub.params = MakeJson("{\"x\":1}");
  sub.nodes.push_back(Node("review", inner));
  f.library.push_back(sub);
  auto done_when = std::make_shared<FnFunction>([](const NodeContext&, const JsonText& out) {
    bool done = out->find("\"iteration\":3") != std::string::npos;
    return NodeResult::Success(MakeJson(done ? "true" : "false"));
  });
  RunOutcome out =
      f.Run(One(SubNode("r", DynamicNode::Kind::kLoop, "round", Value("null"), done_when, 5)));
  REQUIRE(out.status == RunStatus::kSucceeded);
  CHECK(inner->calls.load() == 3);
  CHECK(*out.results[0].output ==
        "{\"x\":1,\"iteration\":3,\"previous\":{\"x\":1,\"iteration\":2,"
        "\"previous\":{\"x\":1,\"iteration\":1}}}");
  CHECK(f.Record("r#1/review"));
  CHECK(f.Record("r#3/review"));
  CHECK_FALSE(f.Record("r#4/review"));
}

TEST_CASE("loop: max_iterations without done_when is a permanent failure" * doctest::timeout(60)) {
  Fixture f;
  WorkflowSpec sub;
  sub.name = "round";
  sub.nodes.push_back(Node("review", std::make_shared<ParamsBody>()));
  f.library.push_back(sub);
  RunOutcome out =
      f.Run(One(SubNode("r", DynamicNode::Kind::kLoop, "round", Value("null"), Value("false"), 2)));
  CHECK(out.status == RunStatus::kFailed);
  CHECK(out.results[0].error.kind() == ErrorKind::kPermanent);
  CHECK(out.error.find("max_iterations (2)") != std::string::npos);
  CHECK(f.Record("r#2/review"));
}

TEST_CASE("loop: a resume continues from the first unfinished iteration" * doctest::timeout(60)) {
  Fixture f;
  auto inner = std::make_shared<ParamsBody>();
  WorkflowSpec sub;
  sub.name = "round";
  sub.nodes.push_back(Node("review", inner));
  f.library.push_back(sub);
  auto done_when = std::make_shared<FnFunction>([](const NodeContext&, const JsonText& out) {
    bool done = out->find("\"iteration\":3") != std::string::npos;
    return NodeResult::Success(MakeJson(done ? "true" : "false"));
  });
  WorkflowSpec wf =
      One(SubNode("r", DynamicNode::Kind::kLoop, "round", Value("null"), done_when, 5));
  std::unordered_map<std::string, NodeRecord> earlier;
  for (int i : {1, 2}) {
    NodeRecord rec;
    rec.run_id = "r1";
    rec.node = "r#" + std::to_string(i) + "/review";
    rec.status = NodeStatus::kSucceeded;
    rec.attempts = 1;
    rec.output_json = "{\"iteration\":" + std::to_string(i) + ",\"recorded\":true}";
    earlier[rec.node] = rec;
  }
  RunOutcome out = f.Run(wf, earlier);
  REQUIRE(out.status == RunStatus::kSucceeded);
  CHECK(inner->calls.load() == 1);
  MutexLock lock(&inner->mu);
  REQUIRE(inner->seen.size() == 1);
  // Iteration 3 gets iteration 2's recorded output as `previous`.
  CHECK(inner->seen[0] == "{\"iteration\":3,\"previous\":{\"iteration\":2,\"recorded\":true}}");
}

TEST_CASE("call: runs the workflow with params, records its nodes under the caller" *
          doctest::timeout(60)) {
  Fixture f;
  auto inner = std::make_shared<ParamsBody>();
  WorkflowSpec sub;
  sub.name = "enrich";
  sub.params = MakeJson("{\"x\":1,\"y\":2}");
  sub.nodes.push_back(Node("fetch", inner));
  f.library.push_back(sub);
  RunOutcome out =
      f.Run(One(SubNode("c", DynamicNode::Kind::kCall, "enrich", Value("{\"x\":5}"), nullptr)));
  REQUIRE(out.status == RunStatus::kSucceeded);
  CHECK(*out.results[0].output == "{\"x\":5,\"y\":2}");
  auto rec = f.Record("c/fetch");
  REQUIRE(rec);
  CHECK(rec->status == NodeStatus::kSucceeded);
  // A failing inner node fails the call with its kind, naming it.
  Fixture g;
  WorkflowSpec bad;
  bad.name = "enrich";
  bad.nodes.push_back(Node("fetch", std::make_shared<ItemBody>(&g.clock, [](int, int) {
                              return Status::Error(ErrorKind::kRateLimited, "slow down");
                            })));
  g.library.push_back(bad);
  RunOutcome failed =
      g.Run(One(SubNode("c", DynamicNode::Kind::kCall, "enrich", Value("null"), nullptr)));
  CHECK(failed.status == RunStatus::kFailed);
  CHECK(failed.results[0].error.kind() == ErrorKind::kRateLimited);
  CHECK(failed.error.find("c/fetch") != std::string::npos);
}

TEST_CASE("SplitJsonArray finds the elements of an array" * doctest::timeout(10)) {
  std::vector<std::pair<size_t, size_t>> spans;
  std::string json = "[1,\"a,]\\\"\",{\"x\":[1,2]},[],null, true]";
  REQUIRE(SplitJsonArray(json, &spans));
  std::vector<std::string> parts;
  for (auto [b, e] : spans) parts.push_back(json.substr(b, e - b));
  CHECK(parts ==
        std::vector<std::string>{"1", "\"a,]\\\"\"", "{\"x\":[1,2]}", "[]", "null", "true"});
  CHECK_FALSE(SplitJsonArray("{\"a\":1}", &spans));
  CHECK_FALSE(SplitJsonArray("\"s\"", &spans));
  CHECK(SplitJsonArray("[]", &spans));
  CHECK(spans.empty());
}

}  // namespace keel
