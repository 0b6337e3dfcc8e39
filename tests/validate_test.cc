#include <doctest/doctest.h>

#include "engine/workflow.h"

namespace keel {
namespace {

class NoopBody : public NodeBody {
 public:
  void Start(const NodeContext&, NodeCompletion done) override {
    done(NodeResult::Success(MakeJson("null")));
  }
};

WorkflowSpec Make(std::vector<std::pair<std::string, std::vector<std::string>>> nodes) {
  WorkflowSpec wf;
  wf.name = "wf";
  wf.where = "flow.lua:1";
  int line = 2;
  for (auto& [name, after] : nodes) {
    NodeSpec n;
    n.name = name;
    n.after = after;
    n.where = "flow.lua:" + std::to_string(line++);
    n.body = std::make_shared<NoopBody>();
    wf.nodes.push_back(n);
  }
  return wf;
}

std::string All(const std::vector<Diagnostic>& ds) {
  std::string out;
  for (auto& d : ds) out += d.ToString() + "\n";
  return out;
}

}  // namespace

TEST_CASE("a well-formed DAG has no diagnostics") {
  CHECK(Validate(Make({{"a", {}}, {"b", {"a"}}, {"c", {"a", "b"}}})).empty());
}

TEST_CASE("unknown dependency suggests the closest name") {
  auto ds = Validate(Make({{"extract", {}}, {"load", {"extrct"}}}));
  REQUIRE(ds.size() == 1);
  CHECK(ds[0].ToString() ==
        "flow.lua:3: node 'load': unknown dependency 'extrct' (did you mean 'extract'?)");
  auto far = Validate(Make({{"extract", {}}, {"load", {"zzz"}}}));
  CHECK(far[0].message == "unknown dependency 'zzz'");
}

TEST_CASE("duplicates, self-dependencies and repeated deps are reported") {
  auto ds = Validate(Make({{"a", {}}, {"a", {}}, {"b", {"b"}}, {"c", {"a", "a"}}}));
  std::string all = All(ds);
  CHECK(all.find("flow.lua:3: node 'a': duplicate node name (first defined at flow.lua:2)") !=
        std::string::npos);
  CHECK(all.find("node 'b': depends on itself") != std::string::npos);
  CHECK(all.find("node 'c': lists dependency 'a' twice") != std::string::npos);
}

TEST_CASE("a cycle is printed in run order") {
  auto ds = Validate(Make({{"start", {}}, {"a", {"start", "c"}}, {"b", {"a"}}, {"c", {"b"}}}));
  REQUIRE(ds.size() == 1);
  std::string msg = ds[0].message;
  CHECK(msg.rfind("dependency cycle: ", 0) == 0);
  // Any rotation of a -> b -> c -> a is right.
  bool ok = msg.find("a -> b -> c -> a") != std::string::npos ||
            msg.find("b -> c -> a -> b") != std::string::npos ||
            msg.find("c -> a -> b -> c") != std::string::npos;
  CHECK_MESSAGE(ok, msg);
}

TEST_CASE("a node without a body and an empty workflow are reported") {
  auto wf = Make({{"a", {}}});
  wf.nodes[0].body = nullptr;
  CHECK(All(Validate(wf)) == "flow.lua:2: node 'a': has nothing to run (no `run`)\n");
  WorkflowSpec empty;
  empty.name = "e";
  empty.where = "x.lua:1";
  CHECK(All(Validate(empty)) == "x.lua:1: workflow 'e' has no nodes\n");
}

TEST_CASE("Find returns the index or -1") {
  auto wf = Make({{"a", {}}, {"b", {}}});
  CHECK(wf.Find("b") == 1);
  CHECK(wf.Find("z") == -1);
}

}  // namespace keel
