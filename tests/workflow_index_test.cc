// WorkflowIndex (engine/workflow_index.h): nodes by name and which are
// leaves, as WorkflowSpec::Find and the nodes' `after` lists say.

#include "engine/workflow_index.h"

#include <doctest/doctest.h>

#include "tests/fakes/node_spec.h"

namespace keel {
namespace {

using testing::Node;

TEST_CASE("finds nodes as Find does and knows which no node depends on") {
  WorkflowSpec wf;
  wf.name = "diamond";
  wf.nodes = {Node("a", {}, nullptr), Node("b", {"a"}, nullptr), Node("c", {"a"}, nullptr),
              Node("d", {"b", "c"}, nullptr), Node("e", {}, nullptr)};
  WorkflowIndex index(wf);
  for (const NodeSpec& n : wf.nodes) CHECK(index.Find(n.name) == wf.Find(n.name));
  CHECK(index.Find("map[1]") == -1);
  CHECK_FALSE(index.IsLeaf("a"));
  CHECK_FALSE(index.IsLeaf("b"));
  CHECK_FALSE(index.IsLeaf("c"));
  CHECK(index.IsLeaf("d"));
  CHECK(index.IsLeaf("e"));
  // A name not of the workflow (an item of a map, an inner node) is no leaf.
  CHECK_FALSE(index.IsLeaf("map[1]"));
  CHECK_FALSE(index.IsLeaf(""));
}

TEST_CASE("of two nodes of one name, finds the first, as Find does") {
  WorkflowSpec wf;
  wf.nodes = {Node("x", {}, nullptr), Node("x", {}, nullptr)};
  CHECK(WorkflowIndex(wf).Find("x") == 0);
}

}  // namespace
}  // namespace keel
